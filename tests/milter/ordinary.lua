-- Ordinary mail is accepted at DATA: no headers, no body sent to us.
dofile(os.getenv("MT_SRCDIR") .. "/common.lua")
conn = open_conn()
check(mt.test_option(conn, SMFIP_NOCONNECT) and mt.test_option(conn, SMFIP_NOMAIL),
      "connect and MAIL steps negotiated away")
check(mt.test_option(conn, SMFIP_NR_RCPT), "RCPT needs no reply")
envelope(conn, "<someone@example.net>", { "<user@lab.example>", "<other@lab.example>" })
check(mt.data(conn) == nil, "data")
check(mt.getreply(conn) == SMFIR_ACCEPT, "ordinary mail accepted at DATA")
mt.disconnect(conn)
