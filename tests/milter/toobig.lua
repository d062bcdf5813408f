-- A rendezvous mail over MaxMessageSize is rejected with 552.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<bob@b.example>", { "<" .. rdv .. ">" })
check(mt.data(conn) == nil, "data")
check(mt.header(conn, "Subject", "big") == nil, "header")
check(mt.test_option(conn, SMFIP_NOEOH), "no end-of-header step")
for i = 1, 40 do
	check(mt.bodystring(conn, string.rep("x", 1000) .. "\r\n") == nil, "body")
end
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_REPLYCODE, "oversize rejected with a reply code")
mt.disconnect(conn)
