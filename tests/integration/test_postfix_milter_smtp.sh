#!/bin/sh
# The Postfix integration test again, with replies sent as new mails
# (ReplyMethod inject) over SMTP (InjectSocket) instead of rewriting the
# request in place.
INJECT=smtp exec "$(dirname "$0")/test_postfix_milter.sh"
