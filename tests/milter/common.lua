-- Shared helpers for the miltertest scripts: a connection to the milter
-- under test and the steps of an SMTP transaction, failing loudly.
sock = os.getenv("MT_SOCKET")
dir = os.getenv("MT_DIR")
rdv = os.getenv("MT_RDV") or "rdv@lab.example"

function check(cond, what)
	if not cond then
		io.stderr:write("FAILED: " .. what .. "\n")
		error("FAILED: " .. what)
	end
end

function open_conn()
	local conn = mt.connect(sock, 40, 0.25)
	check(conn ~= nil, "connect to " .. sock)
	check(mt.negotiate(conn, nil, nil, nil) == nil, "negotiate")
	-- the milter skips the connect step when it can have the client's
	-- address as a macro with MAIL (see envelope)
	if not mt.test_option(conn, SMFIP_NOCONNECT) then
		check(mt.conninfo(conn, "client.lab.example", "127.0.0.1") == nil, "conninfo")
	end
	return conn
end

-- The milter skips the MAIL step when the MTA can give it the sender
-- (and the queue ID and client address) as macros with DATA.
function envelope(conn, from, rcpts)
	local nomail = mt.test_option(conn, SMFIP_NOMAIL)
	if not nomail then
		mt.macro(conn, SMFIC_MAIL, "i", "TESTQID")
		check(mt.mailfrom(conn, from) == nil, "mailfrom")
		check(mt.getreply(conn) == SMFIR_CONTINUE, "mailfrom reply")
	end
	-- (this miltertest cannot send macros with DATA; libmilter finds
	-- them at DATA all the same when they came with RCPT)
	mt.macro(conn, SMFIC_RCPT, "i", "TESTQID", "{client_addr}", "127.0.0.1",
	         "{mail_addr}", (from:gsub("^<(.*)>$", "%1")))
	for _, r in ipairs(rcpts) do
		check(mt.rcptto(conn, r) == nil, "rcptto " .. r)
		check(mt.getreply(conn) == SMFIR_CONTINUE, "rcptto reply " .. r)
	end
end

-- Sends headers and the body of a mail file written by mptool.
function message(conn, file)
	local f = io.open(file, "rb")
	check(f ~= nil, "open " .. file)
	local raw = f:read("*a")
	f:close()
	local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
	check(head ~= nil, "split " .. file)
	check(mt.data(conn) == nil, "data")
	check(mt.getreply(conn) == SMFIR_CONTINUE, "data reply (rendezvous mail must be read)")
	for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
		local name, value = line:match("^([^:]+):%s*(.*)$")
		check(mt.header(conn, name, value) == nil, "header " .. name)
	end
	if not mt.test_option(conn, SMFIP_NOEOH) then
		check(mt.eoh(conn) == nil, "eoh")
	end
	check(mt.bodystring(conn, body) == nil, "body")
end
