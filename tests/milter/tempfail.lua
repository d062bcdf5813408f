-- When the reply cannot be queued, the request is tempfailed (the
-- sender's MTA retries; nothing is lost).
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
envelope(conn, "<carol@c.example>", { "<" .. rdv .. ">" })
message(conn, dir .. "/carol-request.mail")
check(mt.eom(conn) == nil, "eom")
check(mt.getreply(conn) == SMFIR_TEMPFAIL or mt.getreply(conn) == SMFIR_REPLYCODE, "tempfail when sendmail fails")
mt.disconnect(conn)
