-- A signal from bob to alice is relayed to alice's address.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<bob@b.example>", { "<" .. rdv .. ">" })
message(conn, dir .. "/bob-signal.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_DISCARD, "signal consumed")
mt.disconnect(conn)
