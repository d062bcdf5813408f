-- Ordinary mail is accepted at DATA: no headers, no body sent to us.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
check(mt.test_option(conn, SMFIP_NOCONNECT), "connect step negotiated away")
check(mt.test_option(conn, SMFIP_NR_MAIL) and mt.test_option(conn, SMFIP_NR_RCPT),
      "MAIL and RCPT need no reply")
envelope(conn, "<someone@example.net>", { "<user@lab.example>", "<other@lab.example>" })
check(mt.data(conn) == nil, "data")
check(mt.getreply(conn) == SMFIR_ACCEPT, "ordinary mail accepted at DATA")
mt.disconnect(conn)
