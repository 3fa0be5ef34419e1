/*
 * transcript_runner.c - runs SMTP transcript files against the session
 * engine, each in several feed modes (all-at-once, line-at-a-time,
 * byte-at-a-time, random chunks), and checks replies, backend data, events
 * and counters. The format is documented in docs/smtp-engine.md.
 *
 * Usage: transcript_runner [-v] FILE|DIR...
 * Prints one line per failure and closes with "N passed, N failed".
 * Single-threaded test program; allocates freely (it is not the data path).
 */
#include "dataplane/smtp/smtp_session.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ buffers */

struct buf {
	char *p;
	size_t n, cap;
};

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(tmp) - 1)
		n = (int)sizeof(tmp) - 1;
	buf_add(b, tmp, (size_t)n);
}

/* Escapes for messages: \r \n \0 \xHH visible. */
static void
show(FILE *f, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\r')
			fputs("\\r", f);
		else if (c == '\n')
			fputs("\\n\n        ", f);
		else if (c == '\\')
			fputs("\\\\", f);
		else if (c < 32 || c >= 127)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

/* \r \n \t \0 \\ \xHH */
static size_t
unescape(const char *s, char *out)
{
	size_t o = 0;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] != '\\' || !s[i + 1]) {
			out[o++] = s[i];
			continue;
		}
		i++;
		switch (s[i]) {
		case 'r': out[o++] = '\r'; break;
		case 'n': out[o++] = '\n'; break;
		case 't': out[o++] = '\t'; break;
		case '0': out[o++] = 0; break;
		case '\\': out[o++] = '\\'; break;
		case 'x': {
			char h[3] = { s[i + 1], s[i + 1] ? s[i + 2] : 0, 0 };
			out[o++] = (char)strtol(h, NULL, 16);
			i += 2;
			break;
		}
		default: out[o++] = '\\'; out[o++] = s[i]; break;
		}
	}
	return o;
}

/* ------------------------------------------------------------ script */

enum step_kind {
	ST_C,       /* client bytes; atomic: one read in every mode */
	ST_S,       /* expected reply bytes */
	ST_D,       /* expected backend bytes */
	ST_E,       /* expected event (subsequence) */
	ST_V,       /* verdict queued for the next request of a type */
	ST_DIR,     /* directive */
};

struct step {
	enum step_kind kind;
	char *bytes;
	size_t n;
	int atomic;
	int line;
};

struct script {
	const char *path;
	struct step *steps;
	size_t nsteps;
	struct smtp_config cfg;
	unsigned modes;     /* bit per mode */
	int has_d;
	char *strs[8];
	int nstrs;
};

enum { M_ALL = 1, M_LINE = 2, M_BYTE = 4, M_RANDOM = 8 };
static const char *mode_names[] = { "all", "line", "byte", "random" };

static int verbose;

static int
parse_flag(struct smtp_config *c, const char *k)
{
	static const struct { const char *n; uint32_t f; } fl[] = {
		{ "tls_available", SMTP_CFG_TLS_AVAILABLE },
		{ "tls_active", SMTP_CFG_TLS_ACTIVE },
		{ "cleartext_auth", SMTP_CFG_CLEARTEXT_AUTH },
		{ "sync_enforce", SMTP_CFG_SYNC_ENFORCE },
		{ "no_pipelining", SMTP_CFG_NO_PIPELINING },
		{ "no_chunking", SMTP_CFG_NO_CHUNKING },
		{ "no_smtputf8", SMTP_CFG_NO_SMTPUTF8 },
		{ "no_dsn", SMTP_CFG_NO_DSN },
		{ "no_8bitmime", SMTP_CFG_NO_8BITMIME },
		{ "etrn", SMTP_CFG_ETRN },
		{ "no_vrfy", SMTP_CFG_NO_VRFY },
		{ "tls_required", SMTP_CFG_TLS_REQUIRED },
	};
	for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
		if (!strcmp(fl[i].n, k)) {
			c->flags |= fl[i].f;
			return 0;
		}
	return -1;
}

static int
parse_config(struct script *sc, char *arg, int line)
{
	struct smtp_config *c = &sc->cfg;
	char *k = strtok(arg, " "), *v = strtok(NULL, "");
	unsigned long long n = v ? strtoull(v, NULL, 0) : 0;

	if (!k)
		goto bad;
	if (!v)
		return parse_flag(c, k) == 0 ? 0 : (fprintf(stderr,
			"%s:%d: unknown flag %s\n", sc->path, line, k), -1);
#define NUM(name, field) if (!strcmp(k, name)) { c->field = (uint32_t)n; return 0; }
	NUM("max_cmd_line", max_cmd_line);
	NUM("max_text_line", max_text_line);
	NUM("max_auth_line", max_auth_line);
	NUM("max_rcpts", max_rcpts);
	NUM("max_errors", max_errors);
	NUM("max_rcpt_deferred", max_rcpt_deferred);
	NUM("tmo_greeting", tmo_greeting_ms);
	NUM("tmo_command", tmo_command_ms);
	NUM("tmo_mail", tmo_mail_ms);
	NUM("tmo_rcpt", tmo_rcpt_ms);
	NUM("tmo_data_init", tmo_data_init_ms);
	NUM("tmo_data_block", tmo_data_block_ms);
	NUM("tmo_data_term", tmo_data_term_ms);
	NUM("in_buf", in_buf_size);
	NUM("out_buf", out_buf_size);
	NUM("data_buf", data_buf_size);
#undef NUM
	if (!strcmp(k, "max_msg_size")) {
		c->max_msg_size = n;
		return 0;
	}
	if (!strcmp(k, "bare_eol")) {
		c->bare_eol = !strcmp(v, "normalize") ? SMTP_BARE_EOL_NORMALIZE
						      : SMTP_BARE_EOL_REJECT;
		return 0;
	}
	if (!strcmp(k, "hostname") || !strcmp(k, "banner") ||
	    !strcmp(k, "auth")) {
		char *d = strdup(v);
		sc->strs[sc->nstrs++] = d;
		if (k[0] == 'h')
			c->hostname = d;
		else if (k[0] == 'b')
			c->banner = d;
		else
			c->auth_mechanisms = d;
		return 0;
	}
bad:
	fprintf(stderr, "%s:%d: bad !config\n", sc->path, line);
	return -1;
}

static void
add_step(struct script *sc, enum step_kind k, const char *bytes, size_t n,
		int atomic, int line)
{
	sc->steps = realloc(sc->steps, (sc->nsteps + 1) * sizeof(*sc->steps));
	struct step *st = &sc->steps[sc->nsteps++];
	st->kind = k;
	st->bytes = malloc(n + 1);
	memcpy(st->bytes, bytes, n);
	st->bytes[n] = 0;
	st->n = n;
	st->atomic = atomic;
	st->line = line;
}

static void add_step(struct script *sc, enum step_kind k, const char *bytes,
		size_t n, int atomic, int line);

static void
add_line(struct script *sc, enum step_kind k, const char *text, int line)
{
	char tmp[600];
	int n = snprintf(tmp, sizeof(tmp), "%s\r\n", text);
	add_step(sc, k, tmp, (size_t)n, 0, line);
}

/*
 * Shorthands, expanded with the config seen so far:
 *   @greet  S: the 220 greeting
 *   @ehlo   C: EHLO client.example and the full expected 250 reply
 *   @helo   C: HELO client.example and its reply
 *   @txn    MAIL FROM:<alice@example.org> + RCPT TO:<bob@example.net>, 250s
 *   @data   DATA + 354
 */
static int
expand_macro(struct script *sc, const char *m, int line)
{
	const struct smtp_config *c = &sc->cfg;
	char t[600];

	if (!strcmp(m, "greet")) {
		snprintf(t, sizeof(t), "220 %s %s", c->hostname, c->banner);
		add_line(sc, ST_S, t, line);
	} else if (!strcmp(m, "helo")) {
		add_line(sc, ST_C, "HELO client.example", line);
		snprintf(t, sizeof(t), "250 %s", c->hostname);
		add_line(sc, ST_S, t, line);
	} else if (!strcmp(m, "ehlo")) {
		const char *ext[16];
		char size[40];
		int ne = 0;
		bool auth = c->auth_mechanisms && c->auth_mechanisms[0] &&
			((c->flags & SMTP_CFG_TLS_ACTIVE) ||
			 (c->flags & SMTP_CFG_CLEARTEXT_AUTH));
		if (!(c->flags & SMTP_CFG_NO_PIPELINING))
			ext[ne++] = "PIPELINING";
		snprintf(size, sizeof(size), "SIZE %llu",
			 (unsigned long long)c->max_msg_size);
		ext[ne++] = size;
		if (!(c->flags & SMTP_CFG_NO_8BITMIME))
			ext[ne++] = "8BITMIME";
		if (!(c->flags & SMTP_CFG_NO_SMTPUTF8))
			ext[ne++] = "SMTPUTF8";
		ext[ne++] = "ENHANCEDSTATUSCODES";
		if (!(c->flags & SMTP_CFG_NO_CHUNKING))
			ext[ne++] = "CHUNKING";
		if (!(c->flags & SMTP_CFG_NO_DSN))
			ext[ne++] = "DSN";
		if (c->flags & SMTP_CFG_ETRN)
			ext[ne++] = "ETRN";
		if ((c->flags & SMTP_CFG_TLS_AVAILABLE) &&
		    !(c->flags & SMTP_CFG_TLS_ACTIVE))
			ext[ne++] = "STARTTLS";
		add_line(sc, ST_C, "EHLO client.example", line);
		snprintf(t, sizeof(t), "250-%s", c->hostname);
		add_line(sc, ST_S, t, line);
		for (int i = 0; i < ne; i++) {
			snprintf(t, sizeof(t), "250%c%s",
				 i == ne - 1 && !auth ? ' ' : '-', ext[i]);
			add_line(sc, ST_S, t, line);
		}
		if (auth) {
			snprintf(t, sizeof(t), "250 AUTH %s",
				 c->auth_mechanisms);
			add_line(sc, ST_S, t, line);
		}
	} else if (!strcmp(m, "txn")) {
		add_line(sc, ST_C, "MAIL FROM:<alice@example.org>", line);
		add_line(sc, ST_S, "250 2.1.0 Ok", line);
		add_line(sc, ST_C, "RCPT TO:<bob@example.net>", line);
		add_line(sc, ST_S, "250 2.1.5 Ok", line);
	} else if (!strcmp(m, "data")) {
		add_line(sc, ST_C, "DATA", line);
		add_line(sc, ST_S, "354 End data with <CR><LF>.<CR><LF>", line);
	} else {
		fprintf(stderr, "%s:%d: unknown macro @%s\n", sc->path, line,
			m);
		return -1;
	}
	return 0;
}

static int
load(struct script *sc, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int ln = 0, rc = 0;

	memset(sc, 0, sizeof(*sc));
	sc->path = path;
	smtp_config_defaults(&sc->cfg);
	sc->cfg.hostname = "mx.example";
	sc->cfg.banner = "ESMTP mxgate";
	sc->modes = M_ALL | M_LINE | M_BYTE | M_RANDOM;
	if (!f) {
		perror(path);
		return -1;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		ln++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (len == 0 || line[0] == '#')
			continue;
		char *tmp = malloc((size_t)len + 3);
		size_t n;
		if (line[0] == '@') {
			if (expand_macro(sc, line + 1, ln))
				rc = -1;
		} else if (len >= 3 && line[1] && line[2] == ' ' &&
		    strchr("CSD", line[0]) && strchr(":>=", line[1])) {
			n = unescape(line + 3, tmp);
			if (line[1] == ':') {
				tmp[n++] = '\r';
				tmp[n++] = '\n';
			}
			enum step_kind k = line[0] == 'C' ? ST_C :
					   line[0] == 'S' ? ST_S : ST_D;
			if (k == ST_D)
				sc->has_d = 1;
			add_step(sc, k, tmp, n, line[1] == '=', ln);
		} else if (len >= 2 && (line[0] == 'C' || line[0] == 'S' ||
					line[0] == 'D') && line[1] == ':' &&
			   line[2] == 0) {
			/* "C:" alone: an empty line */
			enum step_kind k = line[0] == 'C' ? ST_C :
					   line[0] == 'S' ? ST_S : ST_D;
			if (k == ST_D)
				sc->has_d = 1;
			add_step(sc, k, "\r\n", 2, 0, ln);
		} else if (!strncmp(line, "E: ", 3)) {
			add_step(sc, ST_E, line + 3, strlen(line + 3), 0, ln);
		} else if (!strncmp(line, "V: ", 3)) {
			add_step(sc, ST_V, line + 3, strlen(line + 3), 0, ln);
		} else if (!strncmp(line, "!config ", 8)) {
			if (parse_config(sc, line + 8, ln))
				rc = -1;
		} else if (!strncmp(line, "!modes ", 7)) {
			/* every word a mode name: a typo is an error, not a
			 * transcript that silently runs in fewer modes */
			char *save = NULL, *w;

			sc->modes = 0;
			for (w = strtok_r(line + 7, " \t", &save); w;
			     w = strtok_r(NULL, " \t", &save)) {
				int m;

				for (m = 0; m < 4; m++)
					if (!strcmp(w, mode_names[m]))
						break;
				if (m == 4) {
					fprintf(stderr, "%s:%d: unknown feed "
						"mode '%s'\n", path, ln, w);
					rc = -1;
				} else {
					sc->modes |= 1u << m;
				}
			}
		} else if (line[0] == '!') {
			add_step(sc, ST_DIR, line + 1, strlen(line + 1), 0, ln);
		} else {
			fprintf(stderr, "%s:%d: cannot parse: %s\n", path, ln,
				line);
			rc = -1;
		}
		free(tmp);
	}
	free(line);
	fclose(f);
	return rc;
}

static void
unload(struct script *sc)
{
	for (size_t i = 0; i < sc->nsteps; i++)
		free(sc->steps[i].bytes);
	free(sc->steps);
	for (int i = 0; i < sc->nstrs; i++)
		free(sc->strs[i]);
}

/* ------------------------------------------------------------ running */

struct verdict_spec {
	char type[64];
	int used;
	char action[16];
	unsigned code;
	char enh[16];
	char text[512];
	int has_text;
};

struct chunk {
	char *p;
	size_t n, off;
};

struct run {
	struct script *sc;
	int mode;
	struct smtp_session *s;
	uint64_t now;
	struct buf out, exp_out, data, exp_data, evlog;
	struct verdict_spec *vq;
	size_t vn, vh;
	int held;          /* a request is held (V: ... hold) */
	uint32_t held_seq;
	int data_paused;
	struct chunk *cq;  /* client chunks not yet taken */
	size_t cn, ch;
	char **eexp;       /* expected events */
	size_t en;
	unsigned rnd;
	int failed;
	char err[4096];
};

static void __attribute__((format(printf, 3, 4)))
fail(struct run *r, int line, const char *fmt, ...)
{
	va_list ap;
	if (r->failed)
		return;
	r->failed = 1;
	int n = snprintf(r->err, sizeof(r->err), "%s:%d [%s]: ", r->sc->path,
			 line, mode_names[r->mode]);
	va_start(ap, fmt);
	vsnprintf(r->err + n, sizeof(r->err) - (size_t)n, fmt, ap);
	va_end(ap);
}

static const char *reset_names[] = { "RSET", "HELO", "SIZE", "LINE", "BDAT" };
static const char *close_names[] = { "QUIT", "TIMEOUT", "ERRORS", "SYNC",
	"BARE_EOL", "VERDICT", "VERDICT_TIMEOUT", "TLS_FAILED", "SHUTDOWN" };

static void
log_event(struct run *r, const struct smtp_event *ev)
{
	struct buf *b = &r->evlog;
	switch (ev->type) {
	case SMTP_REQ_CONNECT:
		buf_adds(b, "CONNECT");
		break;
	case SMTP_REQ_HELO:
		buf_printf(b, "%s %s%s", ev->helo.esmtp ? "EHLO" : "HELO",
			   ev->helo.name, ev->helo.valid ? "" : " invalid");
		break;
	case SMTP_REQ_MAIL: {
		const struct smtp_mail *m = &ev->mail;
		buf_printf(b, "MAIL <%s>", m->addr);
		if (m->has_size)
			buf_printf(b, " SIZE=%llu", (unsigned long long)m->size);
		if (m->body)
			buf_printf(b, " BODY=%s", m->body == SMTP_BODY_7BIT ?
				   "7BIT" : "8BITMIME");
		if (m->smtputf8)
			buf_adds(b, " SMTPUTF8");
		if (m->ret)
			buf_printf(b, " RET=%s", m->ret == SMTP_RET_FULL ?
				   "FULL" : "HDRS");
		if (m->envid)
			buf_printf(b, " ENVID=%s", m->envid);
		if (m->auth)
			buf_printf(b, " AUTH=%s", m->auth);
		if (m->utf8)
			buf_adds(b, " utf8");
		break;
	}
	case SMTP_REQ_RCPT: {
		const struct smtp_rcpt *rc = &ev->rcpt;
		buf_printf(b, "RCPT <%s>", rc->addr);
		if (rc->notify) {
			buf_adds(b, " NOTIFY=");
			const char *nm[] = { "NEVER", "SUCCESS", "FAILURE",
					     "DELAY" };
			int first = 1;
			for (int i = 0; i < 4; i++)
				if (rc->notify & (1u << i)) {
					buf_printf(b, "%s%s", first ? "" : ",",
						   nm[i]);
					first = 0;
				}
		}
		if (rc->orcpt)
			buf_printf(b, " ORCPT=%s", rc->orcpt);
		if (rc->postmaster)
			buf_adds(b, " postmaster");
		if (rc->utf8)
			buf_adds(b, " utf8");
		buf_printf(b, " #%u", rc->index);
		break;
	}
	case SMTP_REQ_DATA:
		buf_printf(b, "%s nrcpt=%u", ev->data.bdat ? "BDAT" : "DATA",
			   ev->data.nrcpt);
		break;
	case SMTP_REQ_DATA_END:
		buf_printf(b, "DATA_END size=%llu nrcpt=%u",
			   (unsigned long long)ev->data_end.size,
			   ev->data_end.nrcpt);
		break;
	case SMTP_REQ_STARTTLS:
		buf_adds(b, "STARTTLS");
		break;
	case SMTP_REQ_AUTH:
		buf_printf(b, "AUTH %s step=%u", ev->auth.mech, ev->auth.step);
		if (ev->auth.response)
			buf_printf(b, " resp=%s", ev->auth.response);
		break;
	case SMTP_REQ_ETRN:
		buf_printf(b, "ETRN %s", ev->etrn.node);
		break;
	case SMTP_EV_RESET:
		buf_printf(b, "RESET %s", reset_names[ev->reset.reason]);
		break;
	case SMTP_EV_CLOSE:
		buf_printf(b, "CLOSE %s", close_names[ev->close.reason]);
		break;
	default:
		buf_printf(b, "?%d", ev->type);
	}
	buf_adds(b, "\n");
}

static void
parse_verdict(const char *s, struct verdict_spec *v)
{
	memset(v, 0, sizeof(*v));
	int off = 0;
	sscanf(s, "%63s %15s %n", v->type, v->action, &off);
	if (off == 0)
		return;
	s += off;
	if (!strcmp(v->action, "challenge")) {
		snprintf(v->text, sizeof(v->text), "%s", s);
		v->has_text = 1;
		return;
	}
	unsigned code = 0;
	int o2 = 0;
	if (sscanf(s, "%u %n", &code, &o2) >= 1 && code >= 200) {
		v->code = code;
		s += o2;
		if (s[0] >= '2' && s[0] <= '5' && s[1] == '.') {
			int o3 = 0;
			sscanf(s, "%15s %n", v->enh, &o3);
			s += o3;
		}
	}
	if (*s) {
		char tmp[512];
		size_t n = unescape(s, tmp);
		tmp[n] = 0;
		snprintf(v->text, sizeof(v->text), "%s", tmp);
		v->has_text = 1;
	}
}

/* index < 0: the head request; else the deferred RCPT with that index */
static void
apply_verdict(struct run *r, const struct verdict_spec *vs, int line,
		long index)
{
	struct smtp_verdict v = { SMTP_V_ACCEPT, 0, NULL, NULL };
	if (!strcmp(vs->action, "reject"))
		v.kind = SMTP_V_REJECT;
	else if (!strcmp(vs->action, "close"))
		v.kind = SMTP_V_CLOSE;
	else if (!strcmp(vs->action, "challenge"))
		v.kind = SMTP_V_CHALLENGE;
	else if (!strcmp(vs->action, "defer"))
		v.kind = SMTP_V_DEFER;
	else if (strcmp(vs->action, "accept"))
		fail(r, line, "bad verdict action %s", vs->action);
	v.code = (uint16_t)vs->code;
	v.enh = vs->enh[0] ? vs->enh : NULL;
	v.text = vs->has_text ? vs->text : NULL;
	int rc = index < 0 ? smtp_session_verdict(r->s, &v)
			   : smtp_session_rcpt_verdict(r->s, (uint32_t)index, &v);
	if (rc != 0)
		fail(r, line, "%s returned %d", index < 0 ?
		     "smtp_session_verdict" : "smtp_session_rcpt_verdict", rc);
}

static int
drain(struct run *r)
{
	int progress = 0;
	size_t n;
	const uint8_t *p = smtp_session_output(r->s, &n);
	if (n) {
		buf_add(&r->out, p, n);
		smtp_session_output_consume(r->s, n);
		progress = 1;
	}
	if (!r->data_paused) {
		p = smtp_session_data(r->s, &n);
		if (n) {
			buf_add(&r->data, p, n);
			smtp_session_data_consume(r->s, n);
			progress = 1;
		}
	}
	return progress;
}

/* Handles the head event; returns 1 if something happened. */
static int
answer(struct run *r, int line)
{
	const struct smtp_event *ev = smtp_session_event(r->s);
	if (ev && r->held && ev->seq != r->held_seq)
		r->held = 0; /* the held request went away (timeout, close) */
	if (!ev || r->held || ev->type == SMTP_EV_DATA_CHUNK)
		return 0;
	size_t logpos = r->evlog.n;
	log_event(r, ev);
	if (ev->type == SMTP_EV_RESET || ev->type == SMTP_EV_CLOSE) {
		if (smtp_session_ack(r->s) != 0)
			fail(r, line, "ack failed");
		return 1;
	}
	const char *tn = smtp_event_name(ev->type);
	const char *logline = r->evlog.p + logpos;
	for (size_t i = 0; i < r->vn; i++) {
		struct verdict_spec *vs = &r->vq[i];
		char typ[16];
		const char *sub = strchr(vs->type, '~');
		size_t tl = sub ? (size_t)(sub - vs->type) : strlen(vs->type);
		if (vs->used || tl >= sizeof(typ))
			continue;
		memcpy(typ, vs->type, tl);
		typ[tl] = 0;
		if (strcmp(typ, tn) || (sub && !strstr(logline, sub + 1)))
			continue;
		vs->used = 1;
		r->vh++;
		if (!strcmp(vs->action, "hold")) {
			r->held = 1;
			r->held_seq = ev->seq;
			return 1;
		}
		apply_verdict(r, vs, line, -1);
		return 1;
	}
	if (smtp_session_accept(r->s) != 0)
		fail(r, line, "accept failed for %s", tn);
	return 1;
}

/* Offers queued client chunks; returns 1 on progress. */
static int
feed_some(struct run *r)
{
	int progress = 0;
	while (r->ch < r->cn) {
		struct chunk *c = &r->cq[r->ch];
		size_t k = smtp_session_feed(r->s, c->p + c->off, c->n - c->off);
		if (k)
			progress = 1;
		c->off += k;
		drain(r);
		if (c->off < c->n)
			break;
		free(c->p);
		r->ch++;
	}
	return progress;
}

static void
pump(struct run *r, int line)
{
	for (int guard = 0; guard < 1000000 && !r->failed; guard++) {
		int p = drain(r);
		p |= feed_some(r);
		p |= answer(r, line);
		if (!p)
			return;
	}
	fail(r, line, "no quiescence");
}

static void
enqueue(struct run *r, const char *p, size_t n)
{
	if (n == 0)
		return;
	r->cq = realloc(r->cq, (r->cn + 1) * sizeof(*r->cq));
	struct chunk *c = &r->cq[r->cn++];
	c->p = malloc(n);
	memcpy(c->p, p, n);
	c->n = n;
	c->off = 0;
}

/* A block of client steps: split per mode, fed with no answers between
 * the pieces (answers only when the engine stops taking input). */
static void
feed_block(struct run *r, size_t from, size_t to)
{
	struct buf seg = { 0 };

	for (size_t i = from; i < to; i++) {
		struct step *st = &r->sc->steps[i];
		if (st->kind != ST_C)
			continue;
		if (st->atomic) {
			enqueue(r, seg.p, seg.n);
			seg.n = 0;
			enqueue(r, st->bytes, st->n);
			continue;
		}
		switch (r->mode) {
		case 0:
			buf_add(&seg, st->bytes, st->n);
			break;
		case 1: {
			size_t a = 0;
			for (size_t k = 0; k < st->n; k++)
				if (st->bytes[k] == '\n') {
					buf_add(&seg, st->bytes + a, k + 1 - a);
					enqueue(r, seg.p, seg.n);
					seg.n = 0;
					a = k + 1;
				}
			buf_add(&seg, st->bytes + a, st->n - a);
			break;
		}
		case 2:
			for (size_t k = 0; k < st->n; k++)
				enqueue(r, st->bytes + k, 1);
			break;
		default: {
			size_t k = 0;
			while (k < st->n) {
				r->rnd = r->rnd * 1103515245u + 12345u;
				size_t len = 1 + (r->rnd >> 16) % 17;
				if (len > st->n - k)
					len = st->n - k;
				enqueue(r, st->bytes + k, len);
				k += len;
			}
		}
		}
	}
	enqueue(r, seg.p, seg.n);
	free(seg.p);
	/* feed everything the engine takes before answering anything */
	while (r->ch < r->cn && !r->failed) {
		if (feed_some(r))
			continue;
		if (!answer(r, r->sc->steps[from].line))
			break;
	}
	pump(r, r->sc->steps[from].line);
}

static void
check_out(struct run *r, int line)
{
	if (r->failed)
		return;
	if (r->out.n != r->exp_out.n || (r->out.n && memcmp(r->out.p,
					r->exp_out.p, r->out.n))) {
		fail(r, line, "replies differ");
		FILE *f = fmemopen(r->err + strlen(r->err),
				   sizeof(r->err) - strlen(r->err) - 1, "w");
		if (f) {
			fputs("\n  expected: ", f);
			show(f, r->exp_out.p ? r->exp_out.p : "", r->exp_out.n);
			fputs("\n  actual:   ", f);
			show(f, r->out.p ? r->out.p : "", r->out.n);
			fclose(f);
		}
	}
}

static uint32_t
stat_get(const struct smtp_stats *st, const char *name, int *ok)
{
	*ok = 1;
#define F(n) if (!strcmp(name, #n)) return (uint32_t)st->n;
	F(commands) F(errors) F(sync_violations) F(pregreet_bytes)
	F(starttls_discarded) F(bare_cr) F(bare_lf) F(nul_dropped)
	F(messages) F(long_lines) F(body_bytes)
#undef F
	*ok = 0;
	return 0;
}

static void
directive(struct run *r, struct step *st)
{
	char a[64] = "", b[64] = "", c[64] = "";
	sscanf(st->bytes, "%63s %63s %63s", a, b, c);
	if (!strcmp(a, "time")) {
		r->now += strtoull(b[0] == '+' ? b + 1 : b, NULL, 10);
		smtp_session_time(r->s, r->now);
	} else if (!strcmp(a, "tls")) {
		int rc = smtp_session_tls_done(r->s, !strcmp(b, "ok"));
		if (rc)
			fail(r, st->line, "tls_done: %d", rc);
	} else if (!strcmp(a, "answer")) {
		struct verdict_spec vs;
		char tmp[600];
		snprintf(tmp, sizeof(tmp), "X %s", st->bytes + 7);
		parse_verdict(tmp, &vs);
		r->held = 0;
		apply_verdict(r, &vs, st->line, -1);
	} else if (!strcmp(a, "rcpt")) {
		/* !rcpt INDEX action [code [enh]] [text]: a deferred RCPT */
		struct verdict_spec vs;
		char tmp[600];
		int o = 0;
		sscanf(st->bytes, "%*s %*s %n", &o);
		snprintf(tmp, sizeof(tmp), "X %s", st->bytes + o);
		parse_verdict(tmp, &vs);
		apply_verdict(r, &vs, st->line, strtol(b, NULL, 10));
	} else if (!strcmp(a, "data")) {
		r->data_paused = !strcmp(b, "pause");
		smtp_session_data_pause(r->s, r->data_paused);
	} else if (!strcmp(a, "shutdown")) {
		smtp_session_shutdown(r->s, 0, NULL, NULL);
	} else if (!strcmp(a, "expect")) {
		if (!strcmp(b, "closed") || !strcmp(b, "open")) {
			if (smtp_session_closed(r->s) != !strcmp(b, "closed"))
				fail(r, st->line, "expected %s", b);
		} else if (!strcmp(b, "state")) {
			const char *sn = smtp_state_name(
					smtp_session_state(r->s));
			if (strcmp(sn, c))
				fail(r, st->line, "state %s, expected %s", sn, c);
		} else if (!strcmp(b, "stat")) {
			int ok;
			char d[64] = "";
			sscanf(st->bytes, "%*s %*s %*s %63s", d);
			uint32_t v = stat_get(smtp_session_stats(r->s), c, &ok);
			if (!ok)
				fail(r, st->line, "unknown stat %s", c);
			else if (v != strtoul(d, NULL, 10))
				fail(r, st->line, "stat %s = %u, expected %s",
				     c, v, d);
		} else if (!strcmp(b, "deferred")) {
			uint32_t nd = smtp_session_rcpt_deferred(r->s);
			if (nd != strtoul(c, NULL, 10))
				fail(r, st->line, "%u RCPTs deferred, expected %s",
				     nd, c);
		} else if (!strcmp(b, "deadline")) {
			uint64_t d = smtp_session_deadline(r->s);
			uint64_t want = !strcmp(c, "none") ? SMTP_NO_DEADLINE :
				r->now + strtoull(c[0] == '+' ? c + 1 : c, NULL, 10);
			if (d != want)
				fail(r, st->line, "deadline %llu, expected %llu",
				     (unsigned long long)d,
				     (unsigned long long)want);
		} else if (!strcmp(b, "pending")) {
			const struct smtp_event *ev = smtp_session_event(r->s);
			const char *tn = ev ? smtp_event_name(ev->type) : "NONE";
			if (strcmp(tn, c))
				fail(r, st->line, "pending %s, expected %s", tn, c);
		} else if (!strcmp(b, "tls")) {
			if (smtp_session_tls_active(r->s) != !strcmp(c, "on"))
				fail(r, st->line, "tls not %s", c);
		} else if (!strcmp(b, "auth")) {
			if (smtp_session_authenticated(r->s) != !strcmp(c, "on"))
				fail(r, st->line, "auth not %s", c);
		} else if (!strcmp(b, "unfed")) {
			size_t left = 0;
			for (size_t i = r->ch; i < r->cn; i++)
				left += r->cq[i].n - r->cq[i].off;
			if (left != strtoull(c, NULL, 10))
				fail(r, st->line, "unfed %zu, expected %s", left, c);
		} else {
			fail(r, st->line, "unknown expect %s", b);
		}
	} else {
		fail(r, st->line, "unknown directive %s", a);
	}
}

static void *
t_alloc(void *ctx, size_t n)
{
	(void)ctx;
	return aligned_alloc(64, (n + 63) & ~(size_t)63);
}

static void
t_free(void *ctx, void *p, size_t n)
{
	(void)ctx;
	(void)n;
	free(p);
}

/* -p: every session is pooled (smtp_session_init_pooled) over a pool of
 * ONE work area, so a session that asked for a second one while holding
 * the first, or used one after giving it back (freed: ASan sees it), or
 * kept it past its end, fails the run. Each get hands out fresh memory
 * filled with garbage, so nothing may survive in a returned area. */
static int pooled;
struct t_pool {
	size_t size;
	void *held;
	unsigned gets, puts, double_get;
};

static void *
t_pool_get(void *ctx)
{
	struct t_pool *tp = ctx;

	if (tp->held) {
		tp->double_get++;
		return NULL;
	}
	tp->held = aligned_alloc(64, (tp->size + 63) & ~(size_t)63);
	memset(tp->held, 0xa5, tp->size);
	tp->gets++;
	return tp->held;
}

static void
t_pool_put(void *ctx, void *b)
{
	struct t_pool *tp = ctx;

	if (b == tp->held) {
		free(b);
		tp->held = NULL;
		tp->puts++;
	}
}

static int
run_mode(struct script *sc, int mode, char *err, size_t errsz)
{
	struct run r;
	struct smtp_alloc al = { t_alloc, t_free, NULL };
	struct t_pool tp = { 0 };
	struct smtp_buf_pool bp = { t_pool_get, t_pool_put, &tp };
	void *block = NULL;

	memset(&r, 0, sizeof(r));
	r.sc = sc;
	r.mode = mode;
	r.now = 1000000;
	r.rnd = 12345;
	for (const char *p = sc->path; *p; p++)
		r.rnd = r.rnd * 31 + (unsigned char)*p;
	if (pooled) {
		size_t n = smtp_session_memsize_pooled(&sc->cfg);

		tp.size = smtp_session_bufsize(&sc->cfg);
		block = t_alloc(NULL, n);
		r.s = smtp_session_init_pooled(block, n, &sc->cfg, &bp, r.now);
	} else {
		r.s = smtp_session_create(&sc->cfg, &al, r.now);
	}
	if (!r.s) {
		snprintf(err, errsz, "%s: session create failed (config)",
			 sc->path);
		return -1;
	}
	/* verdicts and expected events are global queues, in file order */
	for (size_t i = 0; i < sc->nsteps; i++) {
		if (sc->steps[i].kind == ST_V) {
			r.vq = realloc(r.vq, (r.vn + 1) * sizeof(*r.vq));
			parse_verdict(sc->steps[i].bytes, &r.vq[r.vn++]);
		} else if (sc->steps[i].kind == ST_E) {
			r.eexp = realloc(r.eexp, (r.en + 1) * sizeof(char *));
			r.eexp[r.en++] = sc->steps[i].bytes;
		}
	}
	pump(&r, 0);
	size_t i = 0;
	while (i < sc->nsteps && !r.failed) {
		struct step *st = &sc->steps[i];
		if (st->kind == ST_C) {
			size_t j = i;
			while (j < sc->nsteps && (sc->steps[j].kind == ST_C ||
			       sc->steps[j].kind == ST_V ||
			       sc->steps[j].kind == ST_E ||
			       sc->steps[j].kind == ST_D)) {
				if (sc->steps[j].kind == ST_D)
					buf_add(&r.exp_data, sc->steps[j].bytes,
						sc->steps[j].n);
				j++;
			}
			check_out(&r, st->line);
			feed_block(&r, i, j);
			i = j;
			continue;
		}
		if (st->kind == ST_S)
			buf_add(&r.exp_out, st->bytes, st->n);
		else if (st->kind == ST_D)
			buf_add(&r.exp_data, st->bytes, st->n);
		else if (st->kind == ST_DIR) {
			pump(&r, st->line);
			check_out(&r, st->line);
			directive(&r, st);
			pump(&r, st->line);
		}
		i++;
	}
	int last = sc->nsteps ? sc->steps[sc->nsteps - 1].line : 0;
	pump(&r, last);
	check_out(&r, last);
	if (!r.failed && sc->has_d &&
	    (r.data.n != r.exp_data.n ||
	     memcmp(r.data.p, r.exp_data.p, r.data.n))) {
		fail(&r, last, "backend data differs");
		FILE *f = fmemopen(r.err + strlen(r.err),
				   sizeof(r.err) - strlen(r.err) - 1, "w");
		if (f) {
			fputs("\n  expected: ", f);
			show(f, r.exp_data.p ? r.exp_data.p : "", r.exp_data.n);
			fputs("\n  actual:   ", f);
			show(f, r.data.p ? r.data.p : "", r.data.n);
			fclose(f);
		}
	}
	for (size_t k = 0; k < r.vn && !r.failed; k++)
		if (!r.vq[k].used)
			fail(&r, last, "verdict for %s never used", r.vq[k].type);
	if (!r.failed && r.en) {
		/* expected events: an ordered subsequence of the log */
		const char *p = r.evlog.p ? r.evlog.p : "";
		size_t k = 0;
		while (k < r.en && *p) {
			const char *nl = strchr(p, '\n');
			size_t len = (size_t)(nl - p);
			if (strlen(r.eexp[k]) == len && !memcmp(p, r.eexp[k], len))
				k++;
			p = nl + 1;
		}
		if (k < r.en) {
			fail(&r, last, "event '%s' not seen; log:\n%s",
			     r.eexp[k], r.evlog.p ? r.evlog.p : "");
		}
	}
	if (verbose)
		fprintf(stderr, "--- %s [%s] events:\n%s", sc->path,
			mode_names[mode], r.evlog.p ? r.evlog.p : "");
	if (pooled) {
		if (tp.double_get)
			fail(&r, 0, "pooled: %u gets while holding the work "
			     "area", tp.double_get);
		if (tp.gets == 0)
			fail(&r, 0, "pooled: the work area was never taken");
		smtp_session_release(r.s);
		if (tp.held)
			fail(&r, 0, "pooled: work area kept after release");
		if (verbose)
			fprintf(stderr, "pooled: %u gets, %u puts\n", tp.gets,
				tp.puts);
		free(block);
	} else {
		smtp_session_destroy(r.s);
	}
	for (size_t k = r.ch; k < r.cn; k++)
		free(r.cq[k].p);
	free(r.cq);
	free(r.vq);
	free(r.eexp);
	free(r.out.p);
	free(r.exp_out.p);
	free(r.data.p);
	free(r.exp_data.p);
	free(r.evlog.p);
	if (r.failed)
		snprintf(err, errsz, "%s", r.err);
	return r.failed ? -1 : 0;
}

static int
cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	char **files = NULL;
	size_t nf = 0;
	int passed = 0, failed = 0, runs = 0, present = 0, four = 0, fewer = 0;

	for (int i = 1; i < argc; i++) {
		struct stat stt;
		if (!strcmp(argv[i], "-p")) {
			pooled = 1;
			continue;
		}
		if (!strcmp(argv[i], "-v")) {
			verbose = 1;
			continue;
		}
		if (stat(argv[i], &stt) == 0 && S_ISDIR(stt.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *de;

			if (!d) {
				printf("FAIL %s: cannot read the directory\n",
				       argv[i]);
				failed++;
			}
			while (d && (de = readdir(d))) {
				size_t l = strlen(de->d_name);
				if (de->d_name[0] == '.')
					continue;
				/* every file here is a transcript: one that is
				 * misnamed must not drop out of the run */
				present++;
				if (l < 5 || strcmp(de->d_name + l - 4, ".txt")) {
					printf("FAIL %s/%s: not a transcript "
					       "name (*.txt)\n", argv[i],
					       de->d_name);
					failed++;
					continue;
				}
				files = realloc(files, (nf + 1) * sizeof(char *));
				files[nf] = malloc(strlen(argv[i]) + l + 2);
				sprintf(files[nf++], "%s/%s", argv[i], de->d_name);
			}
			if (d)
				closedir(d);
		} else {
			files = realloc(files, (nf + 1) * sizeof(char *));
			files[nf++] = strdup(argv[i]);
			present++;
		}
	}
	qsort(files, nf, sizeof(char *), cmpstr);
	for (size_t i = 0; i < nf; i++) {
		struct script sc;
		char err[4096];
		int ok = 1;
		if (load(&sc, files[i]) != 0) {
			printf("FAIL %s: parse error\n", files[i]);
			failed++;
			unload(&sc);
			continue;
		}
		if (sc.modes == 0) {
			printf("FAIL %s: runs in no feed mode\n", files[i]);
			ok = 0;
		}
		if (sc.modes == (M_ALL | M_LINE | M_BYTE | M_RANDOM))
			four++;
		else if (sc.modes)
			fewer++;
		for (int m = 0; m < 4; m++) {
			if (!(sc.modes & (1u << m)))
				continue;
			runs++;
			if (run_mode(&sc, m, err, sizeof(err)) != 0) {
				printf("FAIL %s\n", err);
				ok = 0;
			}
		}
		if (ok)
			passed++;
		else
			failed++;
		unload(&sc);
		free(files[i]);
	}
	free(files);
	printf("transcripts: %d files present, %d run (%d in all four feed "
	       "modes, %d in fewer), %d runs over feed modes\n", present,
	       passed + failed, four, fewer, runs);
	if (passed + failed != present) {
		printf("FAIL: %d files present, %d transcripts run\n", present,
		       passed + failed);
		failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : (passed ? 0 : 77);
}
