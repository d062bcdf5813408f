-- A request to the rendezvous address alone is answered and discarded.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<alice@a.example>", { "<" .. rdv .. ">" })
message(conn, dir .. "/alice-request.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_DISCARD, "request discarded after the reply was queued")
mt.disconnect(conn)
