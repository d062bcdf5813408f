/*
 * app_progress.c - how far a file transfer is, for the person watching:
 * a one-line bar on stderr redrawn at most ten times a second when
 * stderr is a terminal, or with --json one event a second on the
 * applications' output ({"event":"progress",...}), or nothing.  That
 * output (agent_app_set_output) is stdout unless stdout carries a
 * stream (listen's pipes): then the agent points it at stderr.
 *
 * Interface: agent/app.h (agent_progress_*).  Never fails; a closed or
 * full terminal only loses the drawing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"

enum { MODE_NONE, MODE_BAR, MODE_JSON };

static FILE *events_out;

void
agent_app_set_output(FILE *fp)
{
	events_out = fp;
}

FILE *
agent_app_output(void)
{
	return events_out ? events_out : stdout;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
agent_progress_begin(agent_progress *p, int mode, const char *verb, const char *name,
                     uint64_t total, uint64_t start)
{
	memset(p, 0, sizeof *p);
	if (mode == AGENT_PROGRESS_JSON)
		p->mode = MODE_JSON, p->out = agent_app_output();
	else if (mode == AGENT_PROGRESS_AUTO && isatty(STDERR_FILENO))
		p->mode = MODE_BAR, p->out = stderr;
	else
		p->mode = MODE_NONE;
	snprintf(p->name, sizeof p->name, "%s", name);
	p->verb = verb;
	p->total = total;
	p->start = p->done = start;
	p->t0 = p->last = now_s();
	if (p->mode == MODE_JSON) {
		fprintf(p->out, "{\"event\":\"%s_start\",\"size\":%" PRIu64 ",\"offset\":%" PRIu64 "}\n",
		        verb, total, start);
		fflush(p->out);
	}
}

static double
rate(const agent_progress *p, double t)
{
	double dt = t - p->t0;

	return dt > 0 ? (double)(p->done - p->start) / dt : 0;
}

static void
draw(agent_progress *p, double t, const char *status)
{
	double pct = p->total ? 100.0 * (double)p->done / (double)p->total : 100.0;
	int width = 30, fill = (int)(pct * width / 100.0), i;
	char bar[64];

	for (i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = '\0';
	/* the name is checked text (no control characters), safe to print */
	fprintf(p->out, "\r%-20.20s [%s] %5.1f%% %8.2f MB/s %s", p->name, bar, pct,
	        rate(p, t) / 1e6, status ? status : "");
	if (status)
		fputc('\n', p->out);
	fflush(p->out);
}

void
agent_progress_update(agent_progress *p, uint64_t done)
{
	double t;

	p->done = done;
	if (p->mode == MODE_NONE)
		return;
	t = now_s();
	if (p->mode == MODE_BAR && t - p->last >= 0.1) {
		p->last = t;
		draw(p, t, NULL);
	} else if (p->mode == MODE_JSON && t - p->last >= 1.0) {
		p->last = t;
		fprintf(p->out, "{\"event\":\"progress\",\"bytes\":%" PRIu64 ",\"size\":%" PRIu64
		        ",\"rate\":%.0f}\n", done, p->total, rate(p, t));
		fflush(p->out);
	}
}

void
agent_progress_end(agent_progress *p, const char *status)
{
	double t = now_s();

	if (p->mode == MODE_BAR)
		draw(p, t, status);
	else if (p->mode == MODE_JSON) {
		fprintf(p->out, "{\"event\":\"%s_end\",\"status\":\"%s\",\"bytes\":%" PRIu64
		        ",\"rate\":%.0f}\n", p->verb, status, p->done, rate(p, t));
		fflush(p->out);
	}
	p->mode = MODE_NONE;
}
