/*
 * smtp_body.c - the message body filter (see smtp_body.h for the rules).
 *
 * Runs on the session's lcore; never allocates; touches only its arguments.
 * The fast path copies runs of ordinary octets (anything but CR, LF, NUL)
 * found 16 at a time with SSE2; the state machine below handles the rest.
 */
#include "smtp_body.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

void
smtp_body_init(struct smtp_body *b, bool bdat, bool normalize,
		uint32_t max_line)
{
	memset(b, 0, sizeof(*b));
	b->st = SMTP_BODY_BOL;
	b->out_bol = true;
	b->bdat = bdat;
	b->normalize = normalize;
	b->max_line = max_line;
}

/* Length of the run of octets that are neither CR, LF nor NUL. */
static inline size_t
plain_run(const uint8_t *p, size_t n)
{
	size_t i = 0;
#if defined(__SSE2__)
	const __m128i cr = _mm_set1_epi8('\r');
	const __m128i lf = _mm_set1_epi8('\n');
	const __m128i z = _mm_setzero_si128();
	while (i + 16 <= n) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr),
				_mm_cmpeq_epi8(v, lf)), _mm_cmpeq_epi8(v, z));
		unsigned mask = (unsigned)_mm_movemask_epi8(m);
		if (mask != 0)
			return i + (size_t)__builtin_ctz(mask);
		i += 16;
	}
#endif
	while (i < n && p[i] != '\r' && p[i] != '\n' && p[i] != 0)
		i++;
	return i;
}

/*
 * Emission helpers. EMIT_CHAR re-stuffs: a '.' that starts an emitted line
 * is doubled, whatever input produced it.
 */
#define ROOM 8
#define PUT(c) do { if (out) out[o] = (uint8_t)(c); o++; } while (0)
#define EMIT_CHAR(c) do { \
		if (b->out_bol && (c) == '.') PUT('.'); \
		PUT(c); b->out_bol = false; b->size++; } while (0)
#define EMIT_EOL() do { PUT('\r'); PUT('\n'); b->out_bol = true; \
		b->size += 2; b->line_len = 0; } while (0)

size_t
smtp_body_filter(struct smtp_body *b, const uint8_t *in, size_t n,
		uint8_t *out, size_t cap, size_t *produced,
		enum smtp_body_res *res)
{
	size_t i = 0, o = 0;
	enum smtp_body_st st = b->st;

	*res = SMTP_BODY_MORE;
	if (out == NULL)
		cap = SIZE_MAX;

	while (i < n) {
		if (cap - o < ROOM)
			break;
		uint8_t c = in[i];

		switch (st) {
		case SMTP_BODY_MID: {
			size_t run = plain_run(in + i, n - i);
			if (run > 0) {
				size_t room = cap - o - ROOM + 1;
				if (run > room)
					run = room;
				if (out) {
					if (b->out_bol && in[i] == '.')
						out[o++] = '.';
					memcpy(out + o, in + i, run);
				} else if (b->out_bol && in[i] == '.') {
					o++;
				}
				o += run;
				b->out_bol = false;
				b->size += run;
				b->line_len += (uint32_t)run;
				i += run;
				if (b->max_line && b->line_len + 2 > b->max_line)
					b->overlong = true;
				continue;
			}
			i++;
			b->line_len++;
			if (c == '\r') {
				st = SMTP_BODY_CR;
			} else if (c == '\n') {
				b->bare_lf++;
				if (!b->normalize)
					goto bare;
				EMIT_EOL();
				st = SMTP_BODY_BOL_N;
			} else {
				b->nul++; /* dropped: line goes on */
			}
			break;
		}
		case SMTP_BODY_BOL:
		case SMTP_BODY_BOL_N:
			if (c == '.' && !b->bdat) {
				/* RFC 5321 4.5.3.1.6 does not count the
				 * transparency dot (4.5.2): a line of 998
				 * octets arrives as 999 when it starts with
				 * '.'. A dot that turns out to be content
				 * (".\n", ".\r" + other) is re-counted by
				 * EMIT_CHAR's line when it is emitted. */
				i++;
				st = st == SMTP_BODY_BOL ? SMTP_BODY_DOT
							 : SMTP_BODY_DOT_N;
			} else if (c == '\r') {
				i++;
				b->line_len++;
				st = SMTP_BODY_CR;
			} else if (c == '\n') {
				i++;
				b->bare_lf++;
				if (!b->normalize)
					goto bare;
				EMIT_EOL();
				st = SMTP_BODY_BOL_N;
			} else if (c == 0) {
				/* A NUL makes the line non-empty for boundary
				 * purposes but emits nothing: "\r\n\0.\r\n"
				 * is a line ".", emitted "..\r\n". */
				i++;
				b->line_len++;
				b->nul++;
				st = SMTP_BODY_MID;
			} else {
				st = SMTP_BODY_MID; /* fast path takes it */
			}
			break;
		case SMTP_BODY_DOT:
		case SMTP_BODY_DOT_N:
			i++;
			b->line_len++;
			if (c == '\r') {
				st = st == SMTP_BODY_DOT ? SMTP_BODY_DOT_CR
							 : SMTP_BODY_DOT_N_CR;
			} else if (c == '\n') {
				/* ".\n": a line holding one '.', not an end. */
				b->bare_lf++;
				if (!b->normalize)
					goto bare;
				EMIT_CHAR('.');
				EMIT_EOL();
				st = SMTP_BODY_BOL_N;
			} else {
				/* RFC 5321 4.5.2: a leading '.' followed by
				 * other characters is removed. */
				if (c == 0)
					b->nul++;
				else
					EMIT_CHAR(c);
				st = SMTP_BODY_MID;
			}
			break;
		case SMTP_BODY_DOT_CR:
		case SMTP_BODY_DOT_N_CR:
			if (c == '\n') {
				i++;
				if (st == SMTP_BODY_DOT_CR) {
					/* Literal "\r\n.\r\n": the only end. */
					st = SMTP_BODY_BOL;
					b->line_len = 0;
					b->st = st;
					*res = SMTP_BODY_END;
					*produced = o;
					b->emitted += o;
					return i;
				}
				EMIT_CHAR('.');
				EMIT_EOL();
				st = SMTP_BODY_BOL;
			} else {
				/* ".\r" + other: bare CR after a dot line;
				 * c is looked at again from BOL_N. */
				b->bare_cr++;
				if (!b->normalize)
					goto bare;
				EMIT_CHAR('.');
				EMIT_EOL();
				st = SMTP_BODY_BOL_N;
			}
			break;
		case SMTP_BODY_CR:
			if (c == '\n') {
				i++;
				EMIT_EOL();
				st = SMTP_BODY_BOL;
			} else {
				/* Bare CR: runs of CR are never merged; each
				 * one is its own line end. c is looked at
				 * again from BOL_N. */
				b->bare_cr++;
				if (!b->normalize)
					goto bare;
				EMIT_EOL();
				st = SMTP_BODY_BOL_N;
			}
			break;
		}
		if (b->max_line && b->line_len + 2 > b->max_line &&
		    st == SMTP_BODY_MID)
			b->overlong = true;
	}
	b->st = st;
	*produced = o;
	b->emitted += o;
	return i;
bare:
	b->st = st;
	*produced = o;
	b->emitted += o;
	*res = SMTP_BODY_BARE;
	return i;
}

int
smtp_body_finish(struct smtp_body *b, uint8_t *out, size_t cap)
{
	size_t o = 0;

	if (cap < 4)
		out = NULL;
	switch (b->st) {
	case SMTP_BODY_CR:
	case SMTP_BODY_DOT_CR:
	case SMTP_BODY_DOT_N_CR:
		/* A CR that no LF followed: bare at the end of the message. */
		b->bare_cr++;
		if (!b->normalize)
			return -1;
		if (b->st != SMTP_BODY_CR)
			EMIT_CHAR('.');
		EMIT_EOL();
		break;
	case SMTP_BODY_DOT:
	case SMTP_BODY_DOT_N:
		EMIT_CHAR('.');
		EMIT_EOL();
		break;
	default:
		if (!b->out_bol)
			EMIT_EOL();
		break;
	}
	b->st = SMTP_BODY_BOL;
	b->emitted += o;
	return (int)o;
}
