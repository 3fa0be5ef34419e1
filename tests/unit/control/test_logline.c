/*
 * test_logline.c - control/logline.c, the renderer between the cores'
 * key=value lines and the log file: kv passes lines through but drops a
 * repeated key; json gives one object per line with the same keys, the
 * documented numeric keys as numbers, strings escaped (quote, backslash,
 * control characters, bytes that are not UTF-8); cut lines and words
 * without '=' still render; event levels for log.level.
 *
 * Rendered JSON is also written to the file named by argv[1] (one object
 * a line) when given, for the Python json check in meson (test
 * control_logline_json).
 */
#include <stdio.h>
#include <string.h>

#include "control/logline.h"

static int failures;

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #c);                                 \
			failures++;                                            \
		}                                                              \
	} while (0)

static char out[8192];

static const char *render(const char *in, enum logline_format f)
{
	if (logline_render(in, f, out, sizeof(out)) < 0)
		return "(overflow)";
	return out;
}

static void same(const char *in, enum logline_format f, const char *want)
{
	const char *got = render(in, f);

	if (strcmp(got, want) != 0) {
		fprintf(stderr, "FAIL render(%s)\n  got  %s\n  want %s\n", in,
			got, want);
		failures++;
	}
}

/* Lines as the cores and the main lcore write them (docs/logging.md). */
static const char *const samples[] = {
	"ts=1764754800.123 core=0 event=connect sid=00000001a2b3c4d5 "
	"client=198.18.0.2:40000 listener=mx",
	"ts=1764754800.125 core=1 event=message sid=00000001a2b3c4d5 "
	"client=198.18.0.2 helo=\"mail example\" listener=mx from=<a@b> "
	"rcpts=2 to=<c@d>,<e@f> size=1234 backend=198.18.1.1:25 "
	"reply=\"250 2.0.0 Ok: queued as X\" outcome=accepted ms=12",
	"ts=1764754800.126 core=0 event=policy generation=3 core=0",
	"ts=1764754800.127 core=1 event=push_failed seq=9 kind=2 core=1 "
	"error=\"No space left on device\"",
	"ts=1764754800.128 core=main event=reload by=admin result=failed "
	"error=\"a.conf:3: bad \\ value;a.conf:4: x\"",
	"ts=1764754800.129 core=main event=push seq=1 kind=0 "
	"name=\"198.18.0.0/16\" cores_applied=2 cores_failed=0 latency_us=40",
	"ts=1764754800.130 core=0 event=message helo=\"caf\xc3\xa9 \xff\x01\"",
	"ts=1764754800.131 core=0 event=message reply=\"250 cut here",
	"ts=1764754800.132 core=0 event=session word ms=12 size=12x",
};

int main(int argc, char **argv)
{
	FILE *json = argc > 1 ? fopen(argv[1], "w") : NULL;

	/* kv: unchanged, but a repeated key goes (the first wins). */
	same(samples[0], LOGLINE_KV, samples[0]);
	same(samples[1], LOGLINE_KV, samples[1]);
	same(samples[2], LOGLINE_KV,
	     "ts=1764754800.126 core=0 event=policy generation=3");
	same(samples[3], LOGLINE_KV,
	     "ts=1764754800.127 core=1 event=push_failed seq=9 kind=2 "
	     "error=\"No space left on device\"");

	/* json: numbers where documented numeric, strings otherwise. */
	same(samples[0], LOGLINE_JSON,
	     "{\"ts\":1764754800.123,\"core\":\"0\",\"event\":\"connect\","
	     "\"sid\":\"00000001a2b3c4d5\",\"client\":\"198.18.0.2:40000\","
	     "\"listener\":\"mx\"}");
	same(samples[2], LOGLINE_JSON,
	     "{\"ts\":1764754800.126,\"core\":\"0\",\"event\":\"policy\","
	     "\"generation\":3}");
	same(samples[4], LOGLINE_JSON,
	     "{\"ts\":1764754800.128,\"core\":\"main\",\"event\":\"reload\","
	     "\"by\":\"admin\",\"result\":\"failed\","
	     "\"error\":\"a.conf:3: bad \\\\ value;a.conf:4: x\"}");
	/* UTF-8 kept, a stray byte is U+FFFD, a control byte escaped. */
	same(samples[6], LOGLINE_JSON,
	     "{\"ts\":1764754800.130,\"core\":\"0\",\"event\":\"message\","
	     "\"helo\":\"caf\xc3\xa9 \\ufffd\\u0001\"}");
	/* A line cut inside a quote, a word without '=', a numeric key
	 * whose value is not a number: still one object. */
	same(samples[7], LOGLINE_JSON,
	     "{\"ts\":1764754800.131,\"core\":\"0\",\"event\":\"message\","
	     "\"reply\":\"250 cut here\"}");
	same(samples[8], LOGLINE_JSON,
	     "{\"ts\":1764754800.132,\"core\":\"0\",\"event\":\"session\","
	     "\"word\":\"\",\"ms\":12,\"size\":\"12x\"}");

	/* Too small a buffer is refused, never a half object. */
	CHECK(logline_render(samples[1], LOGLINE_JSON, out, 40) == -1);
	CHECK(logline_render(samples[1], LOGLINE_KV, out, 40) == -1);

	/* Levels and names. */
	CHECK(logline_level_of(samples[0]) == LOGLINE_INFO);
	CHECK(logline_level_of(samples[3]) == LOGLINE_WARN);
	CHECK(logline_level_of("ts=1 core=0 event=backend_error backend=x") ==
	      LOGLINE_WARN);
	CHECK(logline_level_of("ts=1 core=0 event=error what=listen") ==
	      LOGLINE_ERROR);
	CHECK(logline_level_of("ts=1 core=0 event=errors") == LOGLINE_INFO);
	CHECK(logline_level_parse("debug") == LOGLINE_DEBUG);
	CHECK(logline_level_parse("warning") == -1);
	CHECK(logline_format_parse("json") == LOGLINE_JSON);
	CHECK(logline_format_parse("JSON") == -1);

	for (unsigned i = 0; json && i < sizeof(samples) / sizeof(*samples);
	     i++) {
		char kv[8192];

		fprintf(json, "%s\n", render(samples[i], LOGLINE_JSON));
		fprintf(json, "%s\n",
			logline_render(samples[i], LOGLINE_KV, kv,
				       sizeof(kv)) < 0 ? "(overflow)" : kv);
	}
	if (json)
		fclose(json);
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	else
		printf("logline: all checks passed\n");
	return failures ? 1 : 0;
}
