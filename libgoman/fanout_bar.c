/*
 * fanout_bar.c - goman-fanout's progress bar, a goman_fanout_progress_fn (see goman/fanout.h):
 * the engine calls its hook, and the command decides whether stderr is a terminal worth
 * drawing on. One line redrawn in place; a newline after the last one.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "goman/fanout.h"

#define BAR_WIDTH 30

void goman_fanout_bar(const struct goman_fanout_progress *p, void *ctx)
{
	(void)ctx;
	char line[256];
	double el = (double)p->elapsed_ms / 1000.0;
	int n;
	if (p->bytes_total > 0 && p->bytes_in > 0) {
		double frac = (double)p->bytes_in / (double)p->bytes_total;
		if (frac > 1)
			frac = 1;
		int w = (int)(frac * BAR_WIDTH);
		char bars[BAR_WIDTH + 1];
		memset(bars, '=', (size_t)w);
		memset(bars + w, ' ', (size_t)(BAR_WIDTH - w));
		bars[BAR_WIDTH] = '\0';
		double eta = frac > 0 ? el / frac - el : 0;
		n = snprintf(line, sizeof(line),
			     "\r[%s] %3.0f%% %lu done, %zu running, %lu failed, ETA %.0fs\033[K",
			     bars, frac * 100, p->done, p->running, p->failed, eta < 0 ? 0 : eta);
	} else {
		n = snprintf(line, sizeof(line),
			     "\r%lu done, %zu running, %lu failed, %.1f jobs/s\033[K", p->done,
			     p->running, p->failed, el > 0 ? (double)p->done / el : 0.0);
	}
	if (n > 0 && (size_t)n < sizeof(line)) {
		if (p->last && (size_t)n + 1 < sizeof(line))
			line[n++] = '\n';
		ssize_t wr = write(2, line, (size_t)n);
		(void)wr;
	}
}
