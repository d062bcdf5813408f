-- ReplyMethod rewrite: a request to the rendezvous address alone becomes
-- its reply in place: the member replaces the rendezvous recipient, the
-- request's headers and body make way for the reply's, nothing is sent.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<erin@e.example>", { "<" .. rdv .. ">" })
message(conn, dir .. "/erin-request.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_ACCEPT, "rewritten request accepted")
check(mt.eom_check(conn, MT_RCPTADD, "<erin@e.example>"), "the member added as recipient")
check(mt.eom_check(conn, MT_RCPTDELETE, "<" .. rdv .. ">"), "rendezvous recipient deleted")
for _, h in ipairs({ "From", "To", "Subject", "Message-ID", "Date", "Content-Type" }) do
	check(mt.eom_check(conn, MT_HDRDELETE, h), "request header " .. h .. " deleted")
end
check(mt.eom_check(conn, MT_HDRADD, "From", rdv), "reply From: the rendezvous address")
check(mt.eom_check(conn, MT_HDRADD, "To", "erin@e.example"), "reply To: the member")
check(mt.eom_check(conn, MT_HDRADD, "Subject", "[mailpunch] reply"), "reply Subject")
check(mt.eom_check(conn, MT_HDRADD, "Auto-Submitted", "auto-replied"), "reply is auto-submitted")
check(mt.eom_check(conn, MT_BODYCHANGE), "body replaced by the reply's")
mt.disconnect(conn)
