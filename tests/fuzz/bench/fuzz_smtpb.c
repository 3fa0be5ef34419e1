/*
 * fuzz_smtpb.c - libFuzzer harness for mxgate-bench's sans-I/O SMTP
 * halves (bench/mxgate-bench/smtpb.h), both of which read hostile input:
 * the sink reads whatever a client sends, the client whatever a server
 * answers. Byte 0 picks the side and byte 1 the feed chunk size; the rest
 * is the peer's bytes. The harness drains the side's output after every
 * chunk, hands the client up to three messages, and checks that every
 * call consumes input or stops for a reason (no spin).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bench/mxgate-bench/smtpb.h"

static void run_sink(const uint8_t *d, size_t n, size_t chunk)
{
	static const struct smtpb_sink_conf cf = {.rcpt_4xx_pct = 10,
						  .rcpt_5xx_pct = 10,
						  .drop_pct = 5,
						  .pipelining = true,
						  .chunking = true,
						  .check_digest = true,
						  .seed = 1};
	static struct smtpb_sink s;
	size_t off = 0;

	smtpb_sink_init(&s, &cf, n, 0);
	if (smtpb_sink_drop_now(&s))
		return;
	while (off < n && s.state != SMTPB_S_CLOSED) {
		size_t len = n - off < chunk ? n - off : chunk, k = 0;

		while (k < len && s.state != SMTPB_S_CLOSED) {
			enum smtpb_sink_ev ev;
			struct smtpb_sink_msg m;
			size_t used;
			const char *p;

			smtpb_sink_input(&s, (const char *)d + off + k, len - k,
					 &used, off, &ev, &m);
			if (!used && ev == SMTPB_S_NONE)
				__builtin_trap(); /* no progress, no reason */
			k += used;
			while ((used = smtpb_sink_peek(&s, off, &p)) > 0)
				smtpb_sink_sent(&s, used);
		}
		off += len;
	}
}

/* starttls: the client sends STARTTLS after EHLO; when it waits for the
 * handshake, the fuzzer declares it done (the replies that follow stand
 * for TLS plaintext). */
static void run_client(const uint8_t *d, size_t n, size_t chunk,
		       bool starttls)
{
	static const struct smtpb_client_conf cf = {.helo = "fuzz.test",
						    .from = "a{s}@x{m}",
						    .to = "r{r}@y",
						    .pipelining = true,
						    .bdat = true,
						    .nonce = 7};
	static const struct smtpb_client_conf cft = {.helo = "fuzz.test",
						     .from = "a{s}@x{m}",
						     .to = "r{r}@y",
						     .pipelining = true,
						     .bdat = true,
						     .nonce = 7,
						     .starttls = true};
	static struct smtpb_client c;
	size_t off = 0;
	uint32_t given = 0;

	smtpb_client_init(&c, starttls ? &cft : &cf, 1, 1);
	while (off < n && c.state != SMTPB_C_FAILED &&
	       c.state != SMTPB_C_DONE) {
		size_t len = n - off < chunk ? n - off : chunk, k = 0;
		const char *p;
		size_t out;

		if (smtpb_client_wants_msg(&c)) {
			struct smtpb_msg m = {.seq = given,
					      .rcpts = 1 + given * 7,
					      .size = 100 + given * 3000};
			smtpb_client_next(&c, given < 3 ? &m : NULL);
			given++;
		}
		while ((out = smtpb_client_peek(&c, &p)) > 0)
			smtpb_client_sent(&c, out, off + 2);
		while (k < len && c.state != SMTPB_C_FAILED) {
			struct smtpb_event ev[4];
			size_t used;
			int r = smtpb_client_input(&c,
						   (const char *)d + off + k,
						   len - k, &used, ev, 4);

			k += used;
			if (smtpb_client_wants_tls(&c))
				smtpb_client_tls_done(&c);
			if (r <= 0 && !used)
				break;
		}
		off += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk;

	if (size < 2)
		return 0;
	chunk = 1 + data[1] % 64;
	if (data[1] & 0x80)
		chunk = 4096;
	if (data[0] & 1)
		run_client(data + 2, size - 2, chunk, data[0] & 2);
	else
		run_sink(data + 2, size - 2, chunk);
	return 0;
}
