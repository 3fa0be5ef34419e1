/*
 * scan.c - the per-message content scanner (scan.h): header unfolding,
 * a streaming MIME parser (RFC 2045/2046: multipart boundaries nested
 * up to CONTENT_MIME_DEPTH, base64 and quoted-printable decoded on the
 * fly, RFC 2231 and RFC 2047 file names) and the Hyperscan calls.
 *
 * Owned by the session's lcore. Never blocks; bounded memory (the
 * struct); Hyperscan allocates stream state only at hs_open_stream().
 */
#include <ctype.h>
#include <errno.h>
#include <hs/hs.h>
#include <string.h>
#include <strings.h>

#include "content/scan.h"

struct hit_ctx {
	const struct content_ruleset *rs;
	struct content_verdict *v;
	const char *name;       /* named-header rules: the header's name */
	size_t name_len;
};

void content_verdict_init(struct content_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->rule = -1;
}

static bool terminal(enum content_action a)
{
	return a == CONTENT_ACT_REJECT || a == CONTENT_ACT_TEMPFAIL ||
	       a == CONTENT_ACT_DISCARD || a == CONTENT_ACT_QUARANTINE;
}

static void record(const struct content_ruleset *rs,
		   struct content_verdict *v, unsigned id)
{
	const struct content_rule *r = &rs->rules[id];

	for (unsigned i = 0; i < v->n_hits; i++)
		if (v->hits[i] == (int)id)
			return;
	if (v->n_hits < CONTENT_MAX_HITS)
		v->hits[v->n_hits++] = (int)id;
	else
		v->hits_dropped++;
	if (!terminal(r->action))
		return;
	if (v->rule < 0) {
		v->rule = (int)id;
		return;
	}
	const struct content_rule *best = &rs->rules[v->rule];
	if (r->priority < best->priority ||
	    (r->priority == best->priority && (int)id < v->rule))
		v->rule = (int)id;
}

static int on_match(unsigned id, unsigned long long from,
		    unsigned long long to, unsigned flags, void *ctx)
{
	struct hit_ctx *h = ctx;
	const struct content_rule *r = &h->rs->rules[id];

	(void)from;
	(void)to;
	(void)flags;
	if (r->where == CONTENT_WHERE_HEADER_NAMED &&
	    (strlen(r->header_name) != h->name_len ||
	     strncasecmp(r->header_name, h->name, h->name_len) != 0))
		return 0;
	record(h->rs, h->v, id);
	return 0;
}

enum content_action content_verdict_action(const struct content_ruleset *rs,
					   const struct content_verdict *v)
{
	return v->rule < 0 ? CONTENT_ACT_NONE : rs->rules[v->rule].action;
}

static int block_scan(const struct content_ruleset *rs, void *scratch,
		      enum content_where w, const char *p, size_t n,
		      struct content_verdict *v, const char *name,
		      size_t name_len)
{
	struct hit_ctx h = {rs, v, name, name_len};

	if (rs->db[w] == NULL)
		return 0;
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	if (hs_scan(rs->db[w], p, (unsigned)n, 0, scratch, on_match, &h) !=
	    HS_SUCCESS)
		return -EIO;
	return 0;
}

int content_scan_envelope(const struct content_ruleset *rs, void *scratch,
			  enum content_where where, const char *value,
			  size_t len, struct content_verdict *v)
{
	if (where != CONTENT_WHERE_HELO && where != CONTENT_WHERE_MAIL &&
	    where != CONTENT_WHERE_RCPT)
		return -EINVAL;
	return block_scan(rs, scratch, where, value, len, v, NULL, 0);
}

/* ---- streams ---- */

static void stream_feed(struct content_scan *s, void *st, const void *p,
			size_t n)
{
	struct hit_ctx h = {s->rs, &s->v, NULL, 0};

	if (st == NULL || n == 0)
		return;
	if (hs_scan_stream(st, p, (unsigned)n, 0, s->scratch, on_match, &h) !=
	    HS_SUCCESS)
		s->stats.scan_errors++;
}

static void stream_close(struct content_scan *s, void **st)
{
	struct hit_ctx h = {s->rs, &s->v, NULL, 0};

	if (*st == NULL)
		return;
	/* end-of-data matches ($ anchors) are reported here */
	if (hs_close_stream(*st, s->scratch, on_match, &h) != HS_SUCCESS)
		s->stats.scan_errors++;
	*st = NULL;
}

static void stream_open(struct content_scan *s, enum content_where w,
			void **st)
{
	if (s->rs->db[w] == NULL)
		return;
	if (hs_open_stream(s->rs->db[w], 0, (hs_stream_t **)st) != HS_SUCCESS) {
		*st = NULL;
		s->stats.scan_errors++;
	}
}

/* ---- decoders ---- */

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)toupper(c);
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* base64, lenient (RFC 2045 6.8: characters outside the alphabet are
 * ignored); '=' ends the data of the part. out >= n bytes. */
static size_t b64_step(struct content_scan *s, const char *in, size_t n,
		       uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n && !s->b64_end; i++) {
		int v = b64_val((unsigned char)in[i]);
		if (in[i] == '=') {
			if (s->b64_n == 2)
				out[o++] = (uint8_t)(s->b64_acc >> 4);
			else if (s->b64_n == 3) {
				out[o++] = (uint8_t)(s->b64_acc >> 10);
				out[o++] = (uint8_t)(s->b64_acc >> 2);
			}
			s->b64_end = true;
			break;
		}
		if (v < 0)
			continue;
		s->b64_acc = (s->b64_acc << 6) | (uint32_t)v;
		if (++s->b64_n == 4) {
			out[o++] = (uint8_t)(s->b64_acc >> 16);
			out[o++] = (uint8_t)(s->b64_acc >> 8);
			out[o++] = (uint8_t)s->b64_acc;
			s->b64_n = 0;
			s->b64_acc = 0;
		}
	}
	return o;
}

/* quoted-printable (RFC 2045 6.7): =XY, soft line breaks "=" CRLF;
 * a bad escape passes through as is. out >= n + 2 bytes. */
static size_t qp_step(struct content_scan *s, const char *in, size_t n,
		      uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (s->qp_state == 0) {
			if (c == '=')
				s->qp_state = 1;
			else
				out[o++] = c;
		} else if (s->qp_state == 1) {
			if (c == '\r')
				continue; /* soft break: "=" CR LF */
			if (c == '\n') {
				s->qp_state = 0;
				continue;
			}
			if (hex_val(c) >= 0) {
				s->qp_hi = c;
				s->qp_state = 2;
			} else {
				out[o++] = '=';
				out[o++] = c;
				s->qp_state = 0;
			}
		} else {
			if (hex_val(c) >= 0) {
				out[o++] = (uint8_t)(hex_val(s->qp_hi) * 16 +
						     hex_val(c));
			} else {
				out[o++] = '=';
				out[o++] = s->qp_hi;
				out[o++] = c;
			}
			s->qp_state = 0;
		}
	}
	return o;
}

/* RFC 2047: =?charset?B|Q?text?= decoded (charset left as bytes); the
 * white space between two adjacent encoded words is dropped. */
size_t content_decode_words(const char *in, size_t n, char *out,
			    size_t outlen)
{
	size_t o = 0, i = 0, pending_ws = 0, ws_at = 0;
	bool last_word = false;

	if (outlen == 0)
		return 0;
	while (i < n && o + 1 < outlen) {
		if (in[i] == '=' && i + 1 < n && in[i + 1] == '?') {
			size_t q1, q2, end;
			for (q1 = i + 2; q1 < n && in[q1] != '?'; q1++)
				;
			if (q1 + 2 < n && in[q1 + 2] == '?') {
				char enc = (char)toupper((unsigned char)in[q1 + 1]);
				q2 = q1 + 3;
				for (end = q2; end + 1 < n &&
				     !(in[end] == '?' && in[end + 1] == '=');
				     end++)
					;
				if (end + 1 < n && (enc == 'B' || enc == 'Q')) {
					if (last_word)
						o -= pending_ws; /* drop ws */
					if (enc == 'B') {
						uint32_t acc = 0;
						unsigned k = 0;
						for (size_t j = q2; j < end; j++) {
							int v = b64_val((unsigned char)in[j]);
							if (v < 0)
								continue;
							acc = (acc << 6) | (uint32_t)v;
							if (++k == 4) {
								for (int b = 2; b >= 0 && o + 1 < outlen; b--)
									out[o++] = (char)(acc >> (8 * b));
								k = 0;
								acc = 0;
							}
						}
						if (k == 2 && o + 1 < outlen)
							out[o++] = (char)(acc >> 4);
						else if (k == 3 && o + 2 < outlen) {
							out[o++] = (char)(acc >> 10);
							out[o++] = (char)(acc >> 2);
						}
					} else {
						for (size_t j = q2; j < end && o + 1 < outlen; j++) {
							if (in[j] == '_')
								out[o++] = ' ';
							else if (in[j] == '=' && j + 2 < end &&
								 hex_val((unsigned char)in[j + 1]) >= 0 &&
								 hex_val((unsigned char)in[j + 2]) >= 0) {
								out[o++] = (char)(hex_val((unsigned char)in[j + 1]) * 16 +
										  hex_val((unsigned char)in[j + 2]));
								j += 2;
							} else
								out[o++] = in[j];
						}
					}
					i = end + 2;
					last_word = true;
					pending_ws = 0;
					ws_at = o;
					continue;
				}
			}
		}
		if (in[i] == ' ' || in[i] == '\t') {
			if (o == ws_at + pending_ws)
				pending_ws++;
		} else {
			last_word = false;
			pending_ws = 0;
		}
		out[o++] = in[i++];
		if (!last_word)
			ws_at = o;
	}
	out[o] = '\0';
	return o;
}

/* ---- MIME header parameters ---- */

/* the value of parameter name in a Content-Type/-Disposition value;
 * RFC 2231 name*=charset'lang'%XX form decoded; 0 if absent */
static size_t param(const char *v, size_t n, const char *name, char *out,
		    size_t outlen)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i + nl < n; i++) {
		if ((i > 0 && v[i - 1] != ';' && v[i - 1] != ' ' &&
		     v[i - 1] != '\t') ||
		    strncasecmp(v + i, name, nl) != 0)
			continue;
		size_t j = i + nl;
		bool ext = false;
		if (j < n && v[j] == '*') {
			ext = true;
			j++;
			if (j < n && v[j] == '0') /* first continuation only */
				j++;
			if (j < n && v[j] == '*')
				j++;
		}
		while (j < n && (v[j] == ' ' || v[j] == '\t'))
			j++;
		if (j >= n || v[j] != '=')
			continue;
		j++;
		while (j < n && (v[j] == ' ' || v[j] == '\t'))
			j++;
		size_t o = 0;
		if (j < n && v[j] == '"') {
			for (j++; j < n && v[j] != '"' && o + 1 < outlen; j++) {
				if (v[j] == '\\' && j + 1 < n)
					j++;
				out[o++] = v[j];
			}
		} else {
			for (; j < n && v[j] != ';' && v[j] != ' ' &&
			       v[j] != '\t' && o + 1 < outlen; j++)
				out[o++] = v[j];
		}
		out[o] = '\0';
		if (ext) { /* charset'lang'percent-encoded */
			char *q = strchr(out, '\''), *r;
			if (q != NULL && (r = strchr(q + 1, '\'')) != NULL) {
				size_t k = 0;
				for (char *p = r + 1; *p; p++) {
					if (*p == '%' && hex_val((unsigned char)p[1]) >= 0 &&
					    hex_val((unsigned char)p[2]) >= 0) {
						out[k++] = (char)(hex_val((unsigned char)p[1]) * 16 +
								  hex_val((unsigned char)p[2]));
						p += 2;
					} else
						out[k++] = *p;
				}
				out[k] = '\0';
				o = k;
			}
		}
		return o;
	}
	return 0;
}

static bool ci_prefix(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n >= l && strncasecmp(p, lit, l) == 0;
}

/* A complete unfolded header hdr[0..n) of the current entity. */
static void entity_header(struct content_scan *s, const char *h, size_t n)
{
	struct content_entity *e = &s->ent;
	const char *colon = memchr(h, ':', n);
	size_t nl, vl;
	const char *v;
	char tmp[256];

	if (colon == NULL)
		return;
	nl = (size_t)(colon - h);
	v = colon + 1;
	vl = n - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	if (nl == 12 && strncasecmp(h, "Content-Type", 12) == 0) {
		e->has_type = true;
		e->text = ci_prefix(v, vl, "text/");
		e->multipart = ci_prefix(v, vl, "multipart/");
		if (e->multipart) {
			size_t bl = param(v, vl, "boundary", tmp, sizeof(tmp));
			if (bl > 0 && bl <= CONTENT_BOUNDARY_MAX)
				memcpy(e->boundary, tmp, bl + 1);
		}
		if (e->filename[0] == '\0' &&
		    param(v, vl, "name", tmp, sizeof(tmp)) > 0)
			content_decode_words(tmp, strlen(tmp), e->filename,
					     sizeof(e->filename));
	} else if (nl == 25 &&
		   strncasecmp(h, "Content-Transfer-Encoding", 25) == 0) {
		if (ci_prefix(v, vl, "base64"))
			e->cte = CONTENT_CTE_BASE64;
		else if (ci_prefix(v, vl, "quoted-printable"))
			e->cte = CONTENT_CTE_QP;
	} else if (nl == 19 &&
		   strncasecmp(h, "Content-Disposition", 19) == 0) {
		/* filename= wins over Content-Type's name= */
		if (param(v, vl, "filename", tmp, sizeof(tmp)) > 0)
			content_decode_words(tmp, strlen(tmp), e->filename,
					     sizeof(e->filename));
	}
}

/* A complete header of the message's own header block: header rules. */
static void top_header(struct content_scan *s, const char *h, size_t n)
{
	const char *colon = memchr(h, ':', n);
	char dec[CONTENT_HEADER_MAX];
	size_t dl;

	if (block_scan(s->rs, s->scratch, CONTENT_WHERE_HEADER, h, n, &s->v,
		       NULL, 0) < 0)
		s->stats.scan_errors++;
	dl = content_decode_words(h, n, dec, sizeof(dec));
	bool encoded = dl != n || memcmp(dec, h, n) != 0;
	if (encoded && block_scan(s->rs, s->scratch, CONTENT_WHERE_HEADER,
				  dec, dl, &s->v, NULL, 0) < 0)
		s->stats.scan_errors++;
	if (colon != NULL && s->rs->db[CONTENT_WHERE_HEADER_NAMED] != NULL) {
		size_t nl = (size_t)(colon - h);
		const char *src = encoded ? dec : h;
		size_t sl = encoded ? dl : n;
		const char *dcolon = memchr(src, ':', sl);
		const char *v = dcolon ? dcolon + 1 : src + sl;
		while (v < src + sl && (*v == ' ' || *v == '\t'))
			v++;
		if (block_scan(s->rs, s->scratch, CONTENT_WHERE_HEADER_NAMED, v,
			       (size_t)(src + sl - v), &s->v, h, nl) < 0)
			s->stats.scan_errors++;
	}
	entity_header(s, h, n);
}

static void flush_header(struct content_scan *s)
{
	if (!s->hdr_any)
		return;
	if (s->top == CS_HEADERS)
		top_header(s, s->hdr, s->hdr_len);
	else
		entity_header(s, s->hdr, s->hdr_len);
	s->hdr_len = 0;
	s->hdr_any = false;
	s->hdr_cut = false;
}

/* one header-block line (or piece) without its CRLF */
static void header_line(struct content_scan *s, const char *p, size_t n,
			bool cont)
{
	if (!cont && n > 0 && (p[0] == ' ' || p[0] == '\t')) {
		/* RFC 5322 2.2.3: unfolding removes the CRLF only */
	} else if (!cont) {
		flush_header(s);
	}
	size_t room = sizeof(s->hdr) - s->hdr_len;
	if (n > room) {
		if (!s->hdr_cut)
			s->stats.headers_cut++;
		s->hdr_cut = true;
		n = room;
	}
	memcpy(s->hdr + s->hdr_len, p, n);
	s->hdr_len += n;
	s->hdr_any = true;
}

static void entity_reset(struct content_scan *s)
{
	memset(&s->ent, 0, sizeof(s->ent));
	s->hdr_len = 0;
	s->hdr_any = false;
	s->hdr_cut = false;
}

/* End of an entity's header block: start its body. */
static void entity_body(struct content_scan *s)
{
	struct content_entity *e = &s->ent;

	if (e->filename[0] != '\0' &&
	    block_scan(s->rs, s->scratch, CONTENT_WHERE_ATTACHMENT, e->filename,
		       strlen(e->filename), &s->v, NULL, 0) < 0)
		s->stats.scan_errors++;
	if (e->multipart) {
		if (e->boundary[0] == '\0') {
			s->stats.mime_malformed++;
			s->mime = CM_SKIP;
		} else if (s->depth >= CONTENT_MIME_DEPTH) {
			s->stats.mime_too_deep++;
			s->mime = CM_SKIP;
		} else {
			memcpy(s->bounds[s->depth++], e->boundary,
			       sizeof(e->boundary));
			s->mime = CM_SKIP; /* preamble */
		}
		return;
	}
	s->b64_acc = 0;
	s->b64_n = 0;
	s->b64_end = false;
	s->qp_state = 0;
	if (e->text || !e->has_type)
		stream_open(s, CONTENT_WHERE_MIME, &s->part_stream);
	s->mime = CM_PART_BODY;
}

static void dec_flush(struct content_scan *s)
{
	stream_feed(s, s->part_stream, s->dec, s->dec_len);
	s->dec_len = 0;
}

static void part_end(struct content_scan *s)
{
	if (s->mime == CM_PART_HEADERS)
		s->stats.mime_malformed++; /* boundary inside part headers */
	dec_flush(s);
	stream_close(s, &s->part_stream);
}

/* RFC 2046 5.1.1: "--" boundary ["--"] [LWSP] at the start of a line */
static int boundary_level(struct content_scan *s, const char *p, size_t n,
			  bool *closing)
{
	if (n < 3 || p[0] != '-' || p[1] != '-')
		return -1;
	for (int k = (int)s->depth - 1; k >= 0; k--) {
		size_t bl = strlen(s->bounds[k]);
		if (n < 2 + bl || memcmp(p + 2, s->bounds[k], bl) != 0)
			continue;
		size_t j = 2 + bl;
		*closing = false;
		if (n - j >= 2 && p[j] == '-' && p[j + 1] == '-') {
			*closing = true;
			j += 2;
		}
		while (j < n && (p[j] == ' ' || p[j] == '\t'))
			j++;
		if (j == n)
			return k;
	}
	return -1;
}

/* n <= CONTENT_LINE_MAX: a line or a piece of one */
static void part_data(struct content_scan *s, const char *p, size_t n)
{
	uint8_t *out;

	if (s->part_stream == NULL)
		return;
	/* QP may grow a piece by 2 octets (a bad escape passed through) */
	if (s->dec_len + n + 4 > sizeof(s->dec))
		dec_flush(s);
	out = s->dec + s->dec_len;
	switch (s->ent.cte) {
	case CONTENT_CTE_BASE64:
		s->dec_len += b64_step(s, p, n, out);
		break;
	case CONTENT_CTE_QP:
		s->dec_len += qp_step(s, p, n, out);
		break;
	default:
		memcpy(out, p, n);
		s->dec_len += n;
	}
}

/* One body line (with its LF if complete) or piece on the MIME side. */
static void mime_line(struct content_scan *s, const char *p, size_t n,
		      bool cont)
{
	size_t t = n;
	bool closing;
	int k;

	while (t > 0 && (p[t - 1] == '\n' || p[t - 1] == '\r'))
		t--;
	if (!cont && s->depth > 0 &&
	    (k = boundary_level(s, p, t, &closing)) >= 0) {
		if (s->mime == CM_PART_HEADERS)
			flush_header(s);
		part_end(s);
		s->depth = (unsigned)k + 1;
		if (closing) {
			s->depth = (unsigned)k;
			s->mime = CM_SKIP; /* epilogue */
		} else {
			entity_reset(s);
			s->mime = CM_PART_HEADERS;
		}
		return;
	}
	switch (s->mime) {
	case CM_PART_HEADERS:
		if (!cont && t == 0) {
			flush_header(s);
			entity_body(s);
		} else {
			header_line(s, p, t, cont);
		}
		break;
	case CM_PART_BODY:
		part_data(s, p, n);
		break;
	default:
		break;
	}
}

/* One message header-block line; returns true on the empty line. */
static bool top_line(struct content_scan *s, const char *p, size_t n,
		     bool cont)
{
	size_t t = n;

	while (t > 0 && (p[t - 1] == '\n' || p[t - 1] == '\r'))
		t--;
	if (!cont && t == 0 && n > 0) {
		flush_header(s);
		return true;
	}
	header_line(s, p, t, cont);
	return false;
}

/* ---- the per-message driver ---- */

int content_scan_begin(struct content_scan *s,
		       const struct content_ruleset *rs, void *scratch,
		       uint64_t limit)
{
	memset(s, 0, sizeof(*s));
	s->rs = rs;
	s->scratch = scratch;
	s->limit = limit;
	s->top = CS_HEADERS;
	s->mime = CM_OFF;
	s->mime_enabled = rs->db[CONTENT_WHERE_MIME] != NULL ||
			  rs->db[CONTENT_WHERE_ATTACHMENT] != NULL;
	content_verdict_init(&s->v);
	return 0;
}

/* Line assembly: calls fn for each complete line (with LF) or for a
 * piece when the buffer is full; a piece after the first of a line is
 * flagged cont. Returns bytes consumed (stops after an empty line in
 * the header block so the caller can switch to the body). */
static size_t assemble(struct content_scan *s, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *lf = memchr(p + i, '\n', n - i);
		size_t take = lf ? (size_t)(lf - (p + i)) + 1 : n - i;
		size_t room = sizeof(s->line) - s->line_len;
		bool complete = lf != NULL;

		if (take > room) {
			take = room;
			complete = false;
		}
		memcpy(s->line + s->line_len, p + i, take);
		s->line_len += take;
		i += take;
		if (!complete && s->line_len < sizeof(s->line))
			break; /* wait for more */
		bool cont = s->line_cont;
		s->line_cont = !complete;
		size_t len = s->line_len;
		s->line_len = 0;
		if (s->top == CS_HEADERS) {
			if (top_line(s, s->line, len, cont)) {
				s->top = CS_BODY;
				if (s->mime_enabled)
					entity_body(s);
				stream_open(s, CONTENT_WHERE_BODY,
					    &s->body_stream);
				return i;
			}
		} else {
			mime_line(s, s->line, len, cont);
		}
	}
	return i;
}

int content_scan_feed(struct content_scan *s, const void *buf, size_t len)
{
	const char *p = buf;

	if (s->rs == NULL)
		return -EINVAL;
	if (s->limit > 0) {
		if (s->fed >= s->limit) {
			if (len > 0)
				s->stats.truncated = true;
			return 0;
		}
		if (len > s->limit - s->fed) {
			len = (size_t)(s->limit - s->fed);
			s->stats.truncated = true;
		}
	}
	s->fed += len;
	while (len > 0) {
		if (s->top == CS_HEADERS) {
			size_t used = assemble(s, p, len);
			p += used;
			len -= used;
			continue;
		}
		/* body: the raw stream takes the chunk as it is; the MIME
		 * side needs lines */
		stream_feed(s, s->body_stream, p, len);
		if (s->mime_enabled && s->mime != CM_OFF)
			assemble(s, p, len);
		break;
	}
	return 0;
}

static void close_all(struct content_scan *s)
{
	dec_flush(s);
	stream_close(s, &s->part_stream);
	stream_close(s, &s->body_stream);
}

int content_scan_end(struct content_scan *s, struct content_verdict *v)
{
	if (s->rs == NULL)
		return -EINVAL;
	/* a last line without its LF */
	if (s->line_len > 0) {
		size_t len = s->line_len;
		bool cont = s->line_cont;
		s->line_len = 0;
		if (s->top == CS_HEADERS)
			top_line(s, s->line, len, cont);
		else if (s->mime_enabled)
			mime_line(s, s->line, len, cont);
	}
	if (s->top == CS_HEADERS)
		flush_header(s); /* header block without a body */
	if (s->depth > 0)
		s->stats.mime_malformed++; /* no closing boundary */
	close_all(s);
	*v = s->v;
	s->rs = NULL;
	return 0;
}

void content_scan_abort(struct content_scan *s)
{
	if (s->rs == NULL)
		return;
	if (s->part_stream != NULL)
		hs_close_stream(s->part_stream, s->scratch, NULL, NULL);
	if (s->body_stream != NULL)
		hs_close_stream(s->body_stream, s->scratch, NULL, NULL);
	s->part_stream = s->body_stream = NULL;
	s->rs = NULL;
}
