/*
 * fuzz_content.c - libFuzzer harness for content/: the streaming MIME
 * scanner with a rule set attached (every target class), and the rule
 * file parser. For scanner inputs the verdict of the whole message must
 * equal the verdict of the same bytes split at input-chosen offsets
 * (abort otherwise); ASan/UBSan watch the buffers and decoders.
 * Input: byte 0 selects the mode ('R': the rest is a rule file, at most
 * 512 octets; else the rest is a message and byte 0 seeds the splits).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "content/scan.h"

static struct content_ruleset *rs;
static void *scratch;

static const char *rules =
	"helo /^evil/i reject x\n"
	"header:Subject /buy\\s+now/i reject 5.7.1 subject\n"
	"header /^X-Mailer: Bad/ log m\n"
	"body /RAW-[0-9]{3}/ log raw\n"
	"body /a.{0,20}b/s priority=3 tempfail t\n"
	"mime /secret phrase/i reject 5.7.1 secret\n"
	"mime /^free$/m discard\n"
	"attachment-name /\\.(exe|scr)$/i quarantine q\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	rs = content_ruleset_parse("fuzz", "fuzz.rules", rules, err,
				   sizeof(err));
	if (rs == NULL || content_scratch_grow(rs, &scratch) != 0)
		abort();
	return 0;
}

static struct content_scan sc;

static struct content_verdict run(const uint8_t *p, size_t n, unsigned seed)
{
	struct content_verdict v;
	size_t at = 0;

	content_scan_begin(&sc, rs, scratch, 0);
	while (at < n) {
		size_t k = seed ? 1 + (seed * 2654435761u + at) % 97 : n - at;
		if (k > n - at)
			k = n - at;
		content_scan_feed(&sc, p + at, k);
		at += k;
	}
	content_scan_end(&sc, &v);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] == 'R') {
		char err[256], *text;
		if (size > 513)
			return 0;
		text = malloc(size);
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0';
		content_ruleset_free(content_ruleset_parse("f", "f.rules", text,
							   err, sizeof(err)));
		free(text);
		return 0;
	}
	struct content_verdict a = run(data + 1, size - 1, 0);
	struct content_verdict b = run(data + 1, size - 1, data[0] | 1u);
	if (a.rule != b.rule || a.n_hits != b.n_hits || a.hits_dropped != b.hits_dropped)
		abort();
	for (unsigned i = 0; i < a.n_hits; i++) {
		bool found = false;
		for (unsigned j = 0; j < b.n_hits; j++)
			found |= a.hits[i] == b.hits[j];
		if (!found)
			abort();
	}
	return 0;
}
