/*
 * test_log.c - unit tests for the logging module (lib/log.c).
 *
 * Logs to files in a fresh temporary directory and reads them back: line
 * format, level filtering, neutralised control characters, truncation,
 * reopen after logrotate renamed the file, and whole lines from threads.
 */
#include "testutil.h"

#include "mailpunch/error.h"
#include "mailpunch/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PREFIX_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z " \
                  "mptest\\[[0-9]+\\]: "

static char tmpdir[64];
static char logpath[128];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mp_logtest.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(logpath, sizeof(logpath), "%s/test.log", tmpdir);
}

static void
teardown(void)
{
	char p[192];

	mp_log_close();
	unlink(logpath);
	snprintf(p, sizeof(p), "%s/test.log.1", tmpdir);
	unlink(p);
	rmdir(tmpdir);
}

/* Whole file as a NUL-terminated string; caller frees. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static int
matches(const char *re, const char *s)
{
	regex_t r;
	ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE), 0);
	int ok = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

static void
open_file_log(mp_log_level level)
{
	ck_assert_int_eq(mp_log_open(logpath, "mptest", level), MP_OK);
}

START_TEST(test_level_parse)
{
	static const char *names[] = { "err", "warning", "notice", "info", "debug" };
	mp_log_level l;

	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(mp_log_level_parse(names[i], &l), MP_OK);
		ck_assert_int_eq(l, i);
	}
	ck_assert_int_eq(mp_log_level_parse("DEBUG", &l), MP_OK);
	ck_assert_int_eq(l, MP_LOG_DEBUG);
	ck_assert_int_eq(mp_log_level_parse("Warning", &l), MP_OK);
	ck_assert_int_eq(l, MP_LOG_WARNING);
	ck_assert_int_eq(mp_log_level_parse("warn", &l), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_log_level_parse("", &l), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_log_level_parse("info ", &l), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_log_level_parse(NULL, &l), MP_ERR_INVAL);
}
END_TEST

START_TEST(test_file_format)
{
	char want[64];

	open_file_log(MP_LOG_INFO);
	mp_log_id(MP_LOG_INFO, "4Xb2k1", "hello %d", 42);
	mp_log(MP_LOG_NOTICE, "no id here");
	mp_log_id(MP_LOG_WARNING, "", "empty id");
	mp_log_id(MP_LOG_ERR, NULL, "null id");
	char *s = slurp(logpath);
	ck_assert_uint_eq(count_lines(s), 4);
	ck_assert_msg(matches(PREFIX_RE "INFO: 4Xb2k1: hello 42\n"
	                      "[^\n]*NOTICE: no id here\n"
	                      "[^\n]*WARNING: empty id\n"
	                      "[^\n]*ERR: null id\n$", s), "got: %s", s);
	ck_assert_msg(matches("(^[^\n]*mptest\\[[0-9]+\\]: [^\n]*\n){4}$", s),
	              "got: %s", s);
	snprintf(want, sizeof(want), "Z mptest[%ld]: INFO:", (long)getpid());
	ck_assert_ptr_nonnull(strstr(s, want));

	/* The time stamp is now, in UTC. */
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	ck_assert_ptr_nonnull(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
	time_t logged = timegm(&tm);
	ck_assert_int_le(labs((long)(time(NULL) - logged)), 5);
	free(s);
}
END_TEST

START_TEST(test_file_mode)
{
	struct stat sb;
	mode_t old = umask(0);

	open_file_log(MP_LOG_INFO);
	umask(old);
	ck_assert_int_eq(stat(logpath, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0640);
	/* Appends to what is there already. */
	mp_log(MP_LOG_INFO, "one");
	ck_assert_int_eq(mp_log_open(logpath, "mptest", MP_LOG_INFO), MP_OK);
	mp_log(MP_LOG_INFO, "two");
	char *s = slurp(logpath);
	ck_assert_uint_eq(count_lines(s), 2);
	ck_assert_ptr_nonnull(strstr(s, "INFO: one\n"));
	ck_assert_ptr_nonnull(strstr(s, "INFO: two\n"));
	free(s);
}
END_TEST

START_TEST(test_level_filter)
{
	open_file_log(MP_LOG_INFO);
	ck_assert_int_eq(mp_log_get_level(), MP_LOG_INFO);
	mp_log(MP_LOG_DEBUG, "dropped debug");
	mp_log(MP_LOG_INFO, "kept info");
	mp_log(MP_LOG_ERR, "kept err");
	mp_log_set_level(MP_LOG_DEBUG);
	ck_assert_int_eq(mp_log_get_level(), MP_LOG_DEBUG);
	mp_log(MP_LOG_DEBUG, "kept debug");
	mp_log_set_level(MP_LOG_ERR);
	mp_log(MP_LOG_WARNING, "dropped warning");
	mp_log(MP_LOG_ERR, "kept err 2");
	mp_log_set_level((mp_log_level)17);     /* ignored */
	ck_assert_int_eq(mp_log_get_level(), MP_LOG_ERR);
	mp_log((mp_log_level)9, "bad level dropped");
	char *s = slurp(logpath);
	ck_assert_uint_eq(count_lines(s), 4);
	ck_assert_ptr_null(strstr(s, "dropped"));
	ck_assert_ptr_nonnull(strstr(s, "INFO: kept info\n"));
	ck_assert_ptr_nonnull(strstr(s, "ERR: kept err\n"));
	ck_assert_ptr_nonnull(strstr(s, "DEBUG: kept debug\n"));
	ck_assert_ptr_nonnull(strstr(s, "ERR: kept err 2\n"));
	free(s);
}
END_TEST

START_TEST(test_control_chars)
{
	open_file_log(MP_LOG_INFO);
	mp_log_id(MP_LOG_INFO, "id\nX", "from <%s> x", "evil\r\n2026-01-01T00:00:00Z "
	          "mptest[1]: ERR: forged\x1b[31m\x7f\tend");
	char *s = slurp(logpath);
	ck_assert_uint_eq(count_lines(s), 1);
	ck_assert_msg(matches(PREFIX_RE "INFO: id\\?X: from <evil\\?\\?2026-01-01T"
	                      "00:00:00Z mptest\\[1\\]: ERR: forged\\?\\[31m\\? "
	                      "end> x\n$", s), "got: %s", s);
	for (const char *p = s; *p != '\0'; p++)
		ck_assert(*p == '\n' || ((unsigned char)*p >= 0x20 && *p != 0x7f));
	free(s);
}
END_TEST

START_TEST(test_utf8_kept)
{
	open_file_log(MP_LOG_INFO);
	mp_log(MP_LOG_INFO, "caf\xc3\xa9");
	char *s = slurp(logpath);
	ck_assert_ptr_nonnull(strstr(s, "INFO: caf\xc3\xa9\n"));
	free(s);
}
END_TEST

START_TEST(test_truncation)
{
	static char big[10000];

	memset(big, 'x', sizeof(big) - 1);
	open_file_log(MP_LOG_INFO);
	mp_log_id(MP_LOG_INFO, "ID1", "%s%s", big, big);
	mp_log(MP_LOG_INFO, "after");
	char *s = slurp(logpath);
	ck_assert_uint_eq(count_lines(s), 2);
	char *nl = strchr(s, '\n');
	size_t first = (size_t)(nl - s) + 1;
	ck_assert_uint_le(first, 2048);
	ck_assert_uint_ge(first, 2000);
	ck_assert_msg(memcmp(nl - 3, "...", 3) == 0, "no ellipsis");
	ck_assert(matches(PREFIX_RE "INFO: ID1: xxxx", s));
	ck_assert(matches(PREFIX_RE "INFO: after$", nl + 1));
	free(s);

	/* A huge ID alone is cut as well. */
	unlink(logpath);
	open_file_log(MP_LOG_INFO);
	big[5000] = '\0';
	mp_log_id(MP_LOG_INFO, big, "msg");
	s = slurp(logpath);
	ck_assert_uint_eq(count_lines(s), 1);
	ck_assert_uint_le(strlen(s), 2048);
	free(s);
}
END_TEST

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

START_TEST(test_reopen_after_rename)
{
	char rotated[192];
	int fds = count_fds();

	snprintf(rotated, sizeof(rotated), "%s/test.log.1", tmpdir);
	open_file_log(MP_LOG_INFO);
	ck_assert_int_eq(count_fds(), fds + 1);
	mp_log(MP_LOG_INFO, "before rotate");
	ck_assert_int_eq(rename(logpath, rotated), 0);
	mp_log(MP_LOG_INFO, "still old fd");
	/* What the daemon does on SIGHUP after logrotate. */
	ck_assert_int_eq(mp_log_open(logpath, "mptest", MP_LOG_INFO), MP_OK);
	mp_log(MP_LOG_INFO, "after rotate");
	ck_assert_int_eq(count_fds(), fds + 1);   /* the old one is closed */
	ck_assert_int_eq(mp_log_open("stderr", "mptest", MP_LOG_INFO), MP_OK);
	ck_assert_int_eq(count_fds(), fds);

	char *o = slurp(rotated), *n = slurp(logpath);
	ck_assert_uint_eq(count_lines(o), 2);
	ck_assert_ptr_nonnull(strstr(o, "INFO: before rotate\n"));
	ck_assert_ptr_nonnull(strstr(o, "INFO: still old fd\n"));
	ck_assert_uint_eq(count_lines(n), 1);
	ck_assert_ptr_nonnull(strstr(n, "INFO: after rotate\n"));
	free(o);
	free(n);
}
END_TEST

START_TEST(test_open_errors)
{
	char bad[192];

	ck_assert_int_eq(mp_log_open("relative.log", "mptest", MP_LOG_INFO),
	                 MP_ERR_INVAL);
	ck_assert_int_eq(mp_log_open("", "mptest", MP_LOG_INFO), MP_ERR_INVAL);
	ck_assert_int_eq(mp_log_open(NULL, "mptest", MP_LOG_INFO), MP_ERR_INVAL);
	ck_assert_int_eq(mp_log_open(logpath, "mptest", (mp_log_level)5),
	                 MP_ERR_INVAL);

	/* A failed reopen keeps the old destination. */
	open_file_log(MP_LOG_INFO);
	snprintf(bad, sizeof(bad), "%s/no/such/dir.log", tmpdir);
	errno = 0;
	ck_assert_int_eq(mp_log_open(bad, "other", MP_LOG_DEBUG), MP_ERR_IO);
	ck_assert_int_eq(errno, ENOENT);
	mp_log(MP_LOG_INFO, "still here");
	mp_log(MP_LOG_DEBUG, "level unchanged");
	char *s = slurp(logpath);
	ck_assert_uint_eq(count_lines(s), 1);
	ck_assert(matches(PREFIX_RE "INFO: still here\n$", s));
	free(s);
}
END_TEST

START_TEST(test_errno_preserved)
{
	open_file_log(MP_LOG_INFO);
	errno = EPIPE;
	mp_log(MP_LOG_INFO, "x");
	ck_assert_int_eq(errno, EPIPE);
	mp_log(MP_LOG_DEBUG, "dropped");
	ck_assert_int_eq(errno, EPIPE);
}
END_TEST

/* Point fd 2 at logpath for the duration of fn. */
static char *
capture_stderr(void (*fn)(void))
{
	int saved = dup(STDERR_FILENO);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	return slurp(logpath);
}

static void
log_to_stderr(void)
{
	ck_assert_int_eq(mp_log_open("stderr", "mptest", MP_LOG_NOTICE), MP_OK);
	mp_log_id(MP_LOG_NOTICE, "S1", "to stderr");
	mp_log(MP_LOG_INFO, "below level");
}

static void
log_before_open(void)
{
	mp_log_close();
	mp_log(MP_LOG_INFO, "default destination");
	mp_log(MP_LOG_DEBUG, "default level drops debug");
}

START_TEST(test_stderr)
{
	char *s = capture_stderr(log_to_stderr);
	ck_assert_msg(matches(PREFIX_RE "NOTICE: S1: to stderr\n$", s), "got %s", s);
	free(s);
	s = capture_stderr(log_before_open);
	ck_assert_msg(matches("^[0-9-]+T[0-9:]+Z mailpunch\\[[0-9]+\\]: INFO: "
	                      "default destination\n$", s), "got %s", s);
	free(s);
}
END_TEST

START_TEST(test_syslog)
{
	/* Nothing to read back portably: it must open, log and close. */
	ck_assert_int_eq(mp_log_open("syslog", "mptest", MP_LOG_DEBUG), MP_OK);
	mp_log_id(MP_LOG_DEBUG, "T1", "mailpunch unit test, ignore\n");
	ck_assert_int_eq(mp_log_open("syslog", "mptest2", MP_LOG_DEBUG), MP_OK);
	mp_log_close();
	open_file_log(MP_LOG_INFO);
	mp_log(MP_LOG_INFO, "back to file");
	char *s = slurp(logpath);
	ck_assert(matches(PREFIX_RE "INFO: back to file\n$", s));
	free(s);
}
END_TEST

#define NTHREADS 4
#define NLINES 2000

static char pads[NTHREADS][1600];   /* thread t pads with 'a' + t */

static void *
writer(void *arg)
{
	int t = (int)(long)arg;

	for (int i = 0; i < NLINES; i++) {
		int len = (i * 37 + t * 11) % 1500;
		mp_log_id(MP_LOG_INFO, "T", "thread %d line %d %.*s|", t, i, len,
		          pads[t]);
	}
	return NULL;
}

/* Every line of logpath whole, each (t, i) exactly once. */
static void
check_whole_lines(int writers)
{
	static unsigned char seen[NTHREADS][NLINES];
	char *s = slurp(logpath), *line = s;
	size_t total = 0;
	regex_t r;

	memset(seen, 0, sizeof(seen));
	ck_assert_int_eq(regcomp(&r, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
	                         "[0-9]{2}:[0-9]{2}Z mptest[0-9]?\\[[0-9]+\\]: "
	                         "INFO: T: thread ([0-9]) line "
	                         "([0-9]+) [^\n]*\\|$", REG_EXTENDED), 0);
	while (*line != '\0') {
		char *nl = strchr(line, '\n');
		ck_assert_ptr_nonnull(nl);
		*nl = '\0';
		regmatch_t m[3];
		ck_assert_msg(regexec(&r, line, 3, m, 0) == 0, "mangled: %.200s", line);
		int t = atoi(line + m[1].rm_so), i = atoi(line + m[2].rm_so);
		ck_assert(t < writers && i < NLINES && !seen[t][i]);
		seen[t][i] = 1;
		/* The padding is whole: its length is known from t and i. */
		size_t padlen = (size_t)((i * 37 + t * 11) % 1500);
		const char *pad = line + m[2].rm_eo + 1;
		const char letter[2] = { (char)('a' + t), '\0' };
		ck_assert_uint_eq(strlen(pad), padlen + 1);
		ck_assert_uint_eq(strspn(pad, letter), padlen);
		total++;
		line = nl + 1;
	}
	regfree(&r);
	ck_assert_uint_eq(total, (size_t)writers * NLINES);
	free(s);
}

static void
fill_pads(void)
{
	for (int t = 0; t < NTHREADS; t++)
		memset(pads[t], 'a' + t, sizeof(pads[t]));
}

START_TEST(test_threads)
{
	pthread_t th[NTHREADS];

	fill_pads();
	open_file_log(MP_LOG_INFO);
	for (long t = 0; t < NTHREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, writer, (void *)t), 0);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	check_whole_lines(NTHREADS);
}
END_TEST

/* Reopening (SIGHUP) while threads log loses and mangles nothing. */
START_TEST(test_threads_with_reopen)
{
	pthread_t th[NTHREADS];

	fill_pads();
	open_file_log(MP_LOG_INFO);
	for (long t = 0; t < NTHREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, writer, (void *)t), 0);
	for (int k = 0; k < 300; k++)
		ck_assert_int_eq(mp_log_open(logpath, k % 2 ? "mptest" : "mptest2",
		                             MP_LOG_INFO), MP_OK);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	check_whole_lines(NTHREADS);
}
END_TEST

/* Separate processes share only O_APPEND: one write(2) per line. */
START_TEST(test_processes)
{
	pid_t pid[NTHREADS - 1];

	fill_pads();
	open_file_log(MP_LOG_INFO);
	for (long t = 1; t < NTHREADS; t++) {
		pid[t - 1] = fork();
		ck_assert_int_ge(pid[t - 1], 0);
		if (pid[t - 1] == 0) {
			writer((void *)t);
			_exit(0);
		}
	}
	writer((void *)0);
	for (int t = 1; t < NTHREADS; t++) {
		int status;
		ck_assert_int_eq(waitpid(pid[t - 1], &status, 0), pid[t - 1]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	check_whole_lines(NTHREADS);
}
END_TEST

Suite *log_suite(void);

Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_level_parse);
	tcase_add_test(tc, test_file_format);
	tcase_add_test(tc, test_file_mode);
	tcase_add_test(tc, test_level_filter);
	tcase_add_test(tc, test_control_chars);
	tcase_add_test(tc, test_utf8_kept);
	tcase_add_test(tc, test_truncation);
	tcase_add_test(tc, test_reopen_after_rename);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_errno_preserved);
	tcase_add_test(tc, test_stderr);
	tcase_add_test(tc, test_syslog);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_threads_with_reopen);
	tcase_add_test(tc, test_processes);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(log_suite)
