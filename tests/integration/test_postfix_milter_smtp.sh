#!/bin/sh
# The Postfix integration test again, with the milter injecting its
# replies over SMTP (InjectSocket) instead of spawning sendmail.
INJECT=smtp exec "$(dirname "$0")/test_postfix_milter.sh"
