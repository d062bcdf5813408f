-- The same request again, after the tempfail: now answered.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<carol@c.example>", { "<" .. rdv .. ">" })
message(conn, dir .. "/carol-request.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_DISCARD, "retried request answered")
mt.disconnect(conn)
