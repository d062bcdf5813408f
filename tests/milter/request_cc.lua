-- A request that also has another recipient: only the rendezvous
-- recipient is removed, the other still gets the mail.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<bob@b.example>", { "<friend@lab.example>", "<" .. rdv .. ">" })
message(conn, dir .. "/bob-request.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_ACCEPT, "request with other recipient accepted")
check(mt.eom_check(conn, MT_RCPTDELETE, "<" .. rdv .. ">"), "rendezvous recipient deleted")
check(not mt.eom_check(conn, MT_RCPTDELETE, "<friend@lab.example>"), "other recipient kept")
mt.disconnect(conn)
