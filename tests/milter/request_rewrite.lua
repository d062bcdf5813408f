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
check(mt.eom_check(conn, MT_HDRCHANGE, "From", rdv), "From: becomes the rendezvous address")
check(mt.eom_check(conn, MT_HDRCHANGE, "To", "erin@e.example"), "To: becomes the member")
check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[mailpunch] reply"), "Subject: becomes the reply's")
check(mt.eom_check(conn, MT_HDRCHANGE, "Message-ID"), "Message-ID: becomes the reply's")
check(mt.eom_check(conn, MT_HDRADD, "Auto-Submitted", "auto-replied"), "reply is auto-submitted")
check(mt.eom_check(conn, MT_HDRADD, "In-Reply-To"), "reply refers to the request")
check(mt.eom_check(conn, MT_HDRDELETE, "X-Mailer"), "a header the reply lacks is deleted")
check(not mt.eom_check(conn, MT_HDRADD, "From"), "no second From:")
check(not mt.eom_check(conn, MT_HDRCHANGE, "MIME-Version") and
      not mt.eom_check(conn, MT_HDRDELETE, "MIME-Version"), "a header already right is left alone")
check(mt.eom_check(conn, MT_BODYCHANGE), "body replaced by the reply's")
mt.disconnect(conn)
