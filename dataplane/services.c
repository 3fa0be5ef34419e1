/*
 * services.c - echo, discard and the active-open connect test on the
 * per-core TCP API (see services.h).
 *
 * Echo never buffers on its own: it reads only as much as the send buffer
 * can take (tcp_send_space), so a slow reader stalls the writer through the
 * TCP windows (backpressure end to end) and per-connection memory stays the
 * stack's buffers only.
 */
#include "dataplane/services.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <string.h>

#include <rte_common.h>
#include <rte_malloc.h>

#include "dataplane/net/tcp.h"

enum svc_kind { SVC_FREE, SVC_ECHO, SVC_DISCARD, SVC_CONNECT, SVC_LOADGEN };

struct svc_conn {
	enum svc_kind kind;
	struct svc_state *owner;
	struct tcp_conn *c;
	bool eof;            /* peer sent FIN */
	bool closing;        /* we called tcp_close */
	uint64_t sent, rcvd; /* connect test progress */
	bool bad;            /* connect test: mismatch seen */
	uint32_t next_free;
};

struct svc_state {
	struct svc_conf conf;
	uint16_t core;
	struct net_stack *st;
	struct svc_conn *conns;
	uint32_t free_head;
	bool connect_active;
	uint32_t connect_left;
	uint64_t connect_start_us;
	bool started;
	uint32_t lg_active;
	struct svc_stats stats;
	uint8_t scratch[65536];
};

#define NO_FREE UINT32_MAX

static struct svc_conn *conn_get(struct svc_state *s, enum svc_kind k)
{
	struct svc_conn *sc;

	if (s->free_head == NO_FREE)
		return NULL;
	sc = &s->conns[s->free_head];
	s->free_head = sc->next_free;
	memset(sc, 0, sizeof(*sc));
	sc->kind = k;
	sc->owner = s;
	s->stats.live++;
	return sc;
}

static void conn_put(struct svc_conn *sc)
{
	struct svc_state *s = sc->owner;

	sc->kind = SVC_FREE;
	sc->next_free = s->free_head;
	s->free_head = (uint32_t)(sc - s->conns);
	s->stats.live--;
}

/* Byte i of the connect-test pattern: position-dependent so that a lost,
 * duplicated or reordered segment shows up as a mismatch. */
static inline uint8_t pattern(uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13 ^ (i >> 8));
}

static void echo_pump(struct svc_conn *sc)
{
	struct svc_state *s = sc->owner;

	for (;;) {
		size_t space = tcp_send_space(sc->c);
		size_t n;

		if (space == 0) {
			/* A short tcp_send() is what arms writable(): offer
			 * one byte the full buffer cannot take. */
			if (sc->kind == SVC_ECHO)
				(void)tcp_send(sc->c, s->scratch, 1);
			return;
		}
		if (space > sizeof(s->scratch))
			space = sizeof(s->scratch);
		n = tcp_recv(sc->c, s->scratch, space);
		if (n == 0)
			break;
		if (sc->kind == SVC_ECHO) {
			ssize_t w = tcp_send(sc->c, s->scratch, n);

			if (w < 0 || (size_t)w != n) {
				tcp_abort(sc->c);
				s->stats.reset++;
				conn_put(sc);
				return;
			}
			s->stats.echo_bytes += n;
		} else {
			s->stats.discard_bytes += n;
		}
	}
	if (sc->eof && !sc->closing && tcp_recv_avail(sc->c) == 0) {
		sc->closing = true;
		tcp_close(sc->c);
	}
}

static void connect_pump(struct svc_conn *sc)
{
	struct svc_state *s = sc->owner;
	uint64_t total = s->conf.connect_bytes;
	size_t n;

	/* Receive and verify. */
	while ((n = tcp_recv(sc->c, s->scratch, sizeof(s->scratch))) > 0) {
		for (size_t i = 0; i < n; i++)
			if (s->scratch[i] != pattern(sc->rcvd + i))
				sc->bad = true;
		sc->rcvd += n;
	}
	/* Send as much as fits. */
	while (sc->sent < total) {
		size_t want = RTE_MIN(sizeof(s->scratch), total - sc->sent);
		ssize_t w;

		for (size_t i = 0; i < want; i++)
			s->scratch[i] = pattern(sc->sent + i);
		w = tcp_send(sc->c, s->scratch, want);
		if (w <= 0)
			break;
		sc->sent += (uint64_t)w;
	}
	if (sc->rcvd >= total && sc->sent >= total && !sc->closing) {
		sc->closing = true;
		tcp_close(sc->c);
	}
}

/* Load generator: cps mode sends one request and waits for its echo, then
 * closes; bulk mode sends a constant pattern as fast as the window allows.
 */
static void loadgen_pump(struct svc_conn *sc)
{
	struct svc_state *s = sc->owner;
	uint32_t req = s->conf.lg_req_bytes;
	size_t n;

	if (s->conf.lg_bulk) {
		for (;;) {
			ssize_t w = tcp_send(sc->c, s->scratch,
					     sizeof(s->scratch));
			if (w <= 0)
				break;
			s->stats.lg_bytes += (uint64_t)w;
		}
		while (tcp_recv(sc->c, s->scratch, sizeof(s->scratch)) > 0)
			;
		return;
	}
	if (sc->sent < req) {
		ssize_t w = tcp_send(sc->c, s->scratch, req - sc->sent);

		if (w > 0)
			sc->sent += (uint64_t)w;
	}
	while ((n = tcp_recv(sc->c, s->scratch + 32768, 32768)) > 0)
		sc->rcvd += n;
	if (sc->rcvd >= req && !sc->closing) {
		sc->closing = true;
		tcp_close(sc->c);
	}
}

static void pump(struct svc_conn *sc)
{
	if (sc->kind == SVC_LOADGEN)
		loadgen_pump(sc);
	else if (sc->kind == SVC_CONNECT)
		connect_pump(sc);
	else
		echo_pump(sc);
}

static void *cb_accepted(void *arg, struct tcp_conn *c)
{
	struct svc_state *s = ((struct svc_conn *)arg)->owner;
	enum svc_kind k = ((struct svc_conn *)arg)->kind;
	struct svc_conn *sc = conn_get(s, k);

	if (!sc) {
		s->stats.refused++;
		return NULL;
	}
	sc->c = c;
	s->stats.accepted++;
	return sc;
}

static void cb_connected(void *ctx, struct tcp_conn *c)
{
	struct svc_conn *sc = ctx;

	RTE_SET_USED(c);
	pump(sc);
}

static void cb_readable(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	pump(ctx);
}

static void cb_writable(void *ctx, struct tcp_conn *c)
{
	RTE_SET_USED(c);
	pump(ctx);
}

static void cb_peer_closed(void *ctx, struct tcp_conn *c)
{
	struct svc_conn *sc = ctx;

	RTE_SET_USED(c);
	sc->eof = true;
	if (sc->kind == SVC_LOADGEN) {
		loadgen_pump(sc);
		if (!sc->closing) {
			sc->closing = true;
			tcp_close(sc->c);
		}
		return;
	}
	if (sc->kind == SVC_CONNECT) {
		connect_pump(sc);
		if (!sc->closing) {
			sc->closing = true;
			tcp_close(sc->c);
		}
		return;
	}
	echo_pump(sc);
}

static void connect_finish(struct svc_conn *sc, bool ok)
{
	struct svc_state *s = sc->owner;

	if (ok && !sc->bad && sc->rcvd == s->conf.connect_bytes &&
	    sc->sent == s->conf.connect_bytes) {
		s->stats.connect_ok++;
		s->stats.connect_bytes_verified += sc->rcvd;
	} else {
		s->stats.connect_fail++;
	}
	s->connect_active = false;
}

static void cb_closed(void *ctx, struct tcp_conn *c)
{
	struct svc_conn *sc = ctx;

	RTE_SET_USED(c);
	sc->owner->stats.closed++;
	if (sc->kind == SVC_CONNECT)
		connect_finish(sc, true);
	if (sc->kind == SVC_LOADGEN) {
		sc->owner->lg_active--;
		if (sc->rcvd >= sc->owner->conf.lg_req_bytes)
			sc->owner->stats.lg_completed++;
		else
			sc->owner->stats.lg_failed++;
	}
	conn_put(sc);
}

static void cb_reset(void *ctx, struct tcp_conn *c, int err)
{
	struct svc_conn *sc = ctx;

	RTE_SET_USED(c);
	RTE_SET_USED(err);
	sc->owner->stats.reset++;
	if (sc->kind == SVC_CONNECT)
		connect_finish(sc, false);
	if (sc->kind == SVC_LOADGEN) {
		sc->owner->lg_active--;
		sc->owner->stats.lg_failed++;
	}
	conn_put(sc);
}

static const struct tcp_callbacks svc_cb = {
	.accepted = cb_accepted,
	.connected = cb_connected,
	.readable = cb_readable,
	.writable = cb_writable,
	.peer_closed = cb_peer_closed,
	.closed = cb_closed,
	.reset = cb_reset,
};

/* Listener tags: accepted() needs the service kind and the core state. */
static struct svc_conn *listener_tag(struct svc_state *s, enum svc_kind k)
{
	struct svc_conn *t = conn_get(s, k);

	return t;
}

struct svc_state *svc_create(const struct svc_conf *conf, uint16_t core_index,
			     struct net_stack *st, int socket)
{
	struct svc_state *s;
	uint32_t n = conf->max_conns + 2; /* +2 listener tags */

	s = rte_zmalloc_socket("svc", sizeof(*s), RTE_CACHE_LINE_SIZE, socket);
	if (!s)
		return NULL;
	s->conns = rte_zmalloc_socket("svc_conns", n * sizeof(s->conns[0]),
				      RTE_CACHE_LINE_SIZE, socket);
	if (!s->conns) {
		rte_free(s);
		return NULL;
	}
	s->conf = *conf;
	s->core = core_index;
	s->st = st;
	for (uint32_t i = 0; i < n; i++)
		s->conns[i].next_free = i + 1 < n ? i + 1 : NO_FREE;
	s->free_head = 0;

	if (conf->echo_port) {
		struct svc_conn *t = listener_tag(s, SVC_ECHO);

		if (tcp_listen(st, conf->echo_port, &svc_cb, t) < 0)
			goto fail;
	}
	if (conf->discard_port) {
		struct svc_conn *t = listener_tag(s, SVC_DISCARD);

		if (tcp_listen(st, conf->discard_port, &svc_cb, t) < 0)
			goto fail;
	}
	s->stats.live = 0; /* listener tags are not connections */
	s->connect_left = (core_index == 0 && conf->connect_port)
				  ? conf->connect_count
				  : 0;
	return s;
fail:
	rte_free(s->conns);
	rte_free(s);
	return NULL;
}

/* Active open in the configured family. Over IPv6 nothing is tried
 * before our address passed DAD (-EAGAIN: try again at the next poll). */
static int svc_open(struct svc_state *s, bool v6, rte_be32_t ip4,
		    const struct net_addr *ip6, uint16_t port,
		    struct svc_conn *sc, struct tcp_conn **c)
{
	if (!v6)
		return tcp_connect(s->st, ip4, port, &svc_cb, sc, c);
	if (!net_stack_ip6_ready(s->st))
		return -EAGAIN;
	return tcp_connect6(s->st, ip6, port, &svc_cb, sc, c);
}

static void loadgen_poll(struct svc_state *s)
{
	/* A bounded number of opens per poll keeps one loop iteration
	 * short; the stack's table bound still applies. */
	for (int i = 0; i < 64 && s->lg_active < s->conf.lg_conc; i++) {
		struct svc_conn *sc;
		struct tcp_conn *c;
		int rc;

		if (s->conf.lg_v6 && !net_stack_ip6_ready(s->st))
			return;
		sc = conn_get(s, SVC_LOADGEN);
		if (!sc)
			return;
		rc = svc_open(s, s->conf.lg_v6, s->conf.lg_ip, &s->conf.lg_ip6,
			      s->conf.lg_port, sc, &c);
		if (rc < 0) {
			s->stats.lg_failed++;
			conn_put(sc);
			return;
		}
		sc->c = c;
		s->lg_active++;
		s->stats.lg_started++;
	}
}

void svc_poll(struct svc_state *s, uint64_t now_us)
{
	struct svc_conn *sc;
	struct tcp_conn *c;

	if (s->conf.lg_port) {
		if (!s->started) {
			s->started = true;
			s->connect_start_us =
				now_us +
				(uint64_t)s->conf.connect_delay_ms * 1000;
		}
		if (now_us >= s->connect_start_us)
			loadgen_poll(s);
		return;
	}

	if (s->connect_left == 0 || s->connect_active)
		return;
	if (!s->started) {
		s->started = true;
		s->connect_start_us = now_us +
				      (uint64_t)s->conf.connect_delay_ms * 1000;
	}
	if (now_us < s->connect_start_us)
		return;
	if (s->conf.connect_v6 && !net_stack_ip6_ready(s->st))
		return; /* DAD still running */
	sc = conn_get(s, SVC_CONNECT);
	if (!sc)
		return;
	s->connect_left--;
	s->connect_active = true;
	s->stats.connect_started++;
	if (svc_open(s, s->conf.connect_v6, s->conf.connect_ip,
		     &s->conf.connect_ip6, s->conf.connect_port, sc, &c) < 0) {
		s->stats.connect_fail++;
		s->connect_active = false;
		conn_put(sc);
		return;
	}
	sc->c = c;
}

bool svc_connect_done(const struct svc_state *s)
{
	return s->connect_left == 0 && !s->connect_active;
}

const struct svc_stats *svc_stats(const struct svc_state *s)
{
	return &s->stats;
}

void svc_destroy(struct svc_state *s)
{
	if (!s)
		return;
	rte_free(s->conns);
	rte_free(s);
}

/* "cps,198.18.0.2:7,conc=64,bytes=64" or "bulk,198.18.0.2:9,conc=4" */
int svc_parse_loadgen(const char *spec, struct svc_conf *svc)
{
	char buf[256], *save = NULL, *tok;
	int i = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	svc->lg_conc = 32;
	svc->lg_req_bytes = 64;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save), i++) {
		if (i == 0) {
			if (!strcmp(tok, "cps"))
				svc->lg_bulk = false;
			else if (!strcmp(tok, "bulk"))
				svc->lg_bulk = true;
			else
				goto bad;
		} else if (i == 1) {
			char *colon = strrchr(tok, ':');
			struct in_addr a;

			if (!colon)
				goto bad;
			*colon = '\0';
			if (inet_pton(AF_INET, tok, &a) != 1)
				goto bad;
			svc->lg_ip = a.s_addr;
			svc->lg_port = (uint16_t)atoi(colon + 1);
			if (!svc->lg_port)
				goto bad;
		} else if (!strncmp(tok, "conc=", 5)) {
			svc->lg_conc = (uint32_t)atoi(tok + 5);
		} else if (!strncmp(tok, "bytes=", 6)) {
			svc->lg_req_bytes = (uint32_t)atoi(tok + 6);
			if (svc->lg_req_bytes == 0 || svc->lg_req_bytes > 32768)
				goto bad;
		} else {
			goto bad;
		}
	}
	if (i < 2)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "mxgate: --loadgen '%s': expected "
			"cps|bulk,ADDR:PORT[,conc=N][,bytes=N(1..32768)]\n",
		spec);
	return -EINVAL;
}
