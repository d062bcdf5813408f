-- A failure notice from a member flags the target; nothing is sent.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<bob@b.example>", { "<" .. rdv .. ">" })
message(conn, dir .. "/bob-notice.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_DISCARD, "notice consumed")
mt.disconnect(conn)
