-- A rendezvous mail whose block does not open gets no answer.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<mallory@evil.example>", { "<" .. rdv .. ">" })
message(conn, dir .. "/garbage.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_DISCARD, "garbage discarded")
mt.disconnect(conn)
