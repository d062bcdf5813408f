-- ReplyMethod rewrite, but the request's headers are more than the
-- milter keeps (MaxMessageSize): the reply is injected instead, and the
-- request is discarded as with ReplyMethod inject.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<erin@e.example>", { "<" .. rdv .. ">" })
message(conn, dir .. "/erin-bigheaders.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_DISCARD, "request discarded after the injected reply")
check(not mt.eom_check(conn, MT_BODYCHANGE), "nothing rewritten")
mt.disconnect(conn)
