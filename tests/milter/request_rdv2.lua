-- After a reload that added rdv2@lab.example, mail to it is handled.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<carol@c.example>", { "<rdv2@lab.example>" })
message(conn, dir .. "/carol-request2.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_DISCARD, "request to the new address answered")
mt.disconnect(conn)
