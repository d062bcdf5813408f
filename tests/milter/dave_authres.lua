-- A request from dave, with whatever Authentication-Results the file has.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<dave@d.example>", { "<" .. rdv .. ">" })
message(conn, dir .. "/" .. (os.getenv("MT_FILE") or "dave-request.mail"))
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_DISCARD, "request consumed")
mt.disconnect(conn)
