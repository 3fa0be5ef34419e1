/*
 * brute.c - bounded per-core failure counters (see brute.h): an open
 * hash of entry indices over a fixed array of entries kept on an LRU
 * list, like dataplane/policy/ratelimit.c. Keys are "I" + 4 octets of
 * IPv4 address or "U" + login, hashed with FNV-1a and compared whole.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/brute.h"
#include "auth/sasl.h"

#define NIL UINT32_MAX
#define KEYMAX (AUTH_MAX_FIELD + 1)

struct entry {
	uint32_t prev, next; /* LRU list; head = most recent */
	uint32_t chain;	     /* next entry in the same hash bucket */
	uint32_t fails;
	uint64_t last_us; /* last failure */
	uint64_t locked_until_us;
	uint16_t keylen;
	bool used;
	uint8_t key[KEYMAX];
};

struct auth_brute {
	struct auth_brute_config cfg;
	struct entry *e;
	uint32_t *bucket; /* heads of hash chains */
	uint32_t cap, nbucket, n, head, tail, free_top;
	uint32_t *free_list;
	struct auth_brute_stats st;
};

void auth_brute_config_defaults(struct auth_brute_config *c)
{
	c->ip_delay_after = 5;
	c->ip_lockout_after = 20;
	c->user_delay_after = 5;
	c->user_lockout_after = 0;
	c->delay_ms = 1000;
	c->max_delay_ms = 16000;
	c->window_s = 900;
	c->lockout_s = 900;
}

static uint32_t hash(const uint8_t *k, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

struct auth_brute *auth_brute_create(uint32_t capacity,
				     const struct auth_brute_config *c)
{
	struct auth_brute *t;

	if (capacity < 16 || capacity > (1u << 24)) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->cap = capacity;
	t->nbucket = 1;
	while (t->nbucket < 2 * capacity)
		t->nbucket <<= 1;
	t->e = calloc(capacity, sizeof(*t->e));
	t->bucket = malloc(t->nbucket * sizeof(*t->bucket));
	t->free_list = malloc(capacity * sizeof(*t->free_list));
	if (!t->e || !t->bucket || !t->free_list) {
		auth_brute_free(t);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = 0; i < t->nbucket; i++)
		t->bucket[i] = NIL;
	for (uint32_t i = 0; i < capacity; i++)
		t->free_list[i] = capacity - 1 - i;
	t->free_top = capacity;
	t->head = t->tail = NIL;
	t->cfg = *c;
	return t;
}

void auth_brute_free(struct auth_brute *t)
{
	if (t == NULL)
		return;
	free(t->e);
	free(t->bucket);
	free(t->free_list);
	free(t);
}

void auth_brute_set_config(struct auth_brute *t,
			   const struct auth_brute_config *c)
{
	t->cfg = *c;
}

static void lru_unlink(struct auth_brute *t, uint32_t i)
{
	struct entry *x = &t->e[i];

	if (x->prev != NIL)
		t->e[x->prev].next = x->next;
	else
		t->head = x->next;
	if (x->next != NIL)
		t->e[x->next].prev = x->prev;
	else
		t->tail = x->prev;
}

static void lru_front(struct auth_brute *t, uint32_t i)
{
	struct entry *x = &t->e[i];

	x->prev = NIL;
	x->next = t->head;
	if (t->head != NIL)
		t->e[t->head].prev = i;
	t->head = i;
	if (t->tail == NIL)
		t->tail = i;
}

static void remove_entry(struct auth_brute *t, uint32_t i)
{
	struct entry *x = &t->e[i];
	uint32_t *pp = &t->bucket[hash(x->key, x->keylen) & (t->nbucket - 1)];

	while (*pp != i)
		pp = &t->e[*pp].chain;
	*pp = x->chain;
	lru_unlink(t, i);
	x->used = false;
	t->free_list[t->free_top++] = i;
	t->n--;
}

static uint32_t find(struct auth_brute *t, const uint8_t *k, size_t n)
{
	uint32_t i = t->bucket[hash(k, n) & (t->nbucket - 1)];

	for (; i != NIL; i = t->e[i].chain)
		if (t->e[i].keylen == n && memcmp(t->e[i].key, k, n) == 0)
			return i;
	return NIL;
}

static uint32_t insert(struct auth_brute *t, const uint8_t *k, size_t n)
{
	uint32_t i;

	if (t->free_top == 0) {
		remove_entry(t, t->tail);
		t->st.evictions++;
	}
	i = t->free_list[--t->free_top];
	struct entry *x = &t->e[i];

	memset(x, 0, sizeof(*x));
	x->used = true;
	x->keylen = (uint16_t)n;
	memcpy(x->key, k, n);
	uint32_t *b = &t->bucket[hash(k, n) & (t->nbucket - 1)];

	x->chain = *b;
	*b = i;
	lru_front(t, i);
	t->n++;
	return i;
}

static size_t mkkey(uint8_t *k, uint32_t ip, const char *login)
{
	if (login == NULL) {
		k[0] = 'I';
		memcpy(k + 1, &ip, 4);
		return 5;
	}
	size_t n = strlen(login);

	if (n > KEYMAX - 1)
		n = KEYMAX - 1;
	k[0] = 'U';
	memcpy(k + 1, login, n);
	return n + 1;
}

/* The entry of a key with stale state expired; NIL if absent. */
static uint32_t lookup(struct auth_brute *t, uint32_t ip, const char *login,
		       uint64_t now_us)
{
	uint8_t k[KEYMAX];
	size_t n = mkkey(k, ip, login);
	uint32_t i = find(t, k, n);

	if (i == NIL)
		return NIL;
	struct entry *x = &t->e[i];

	if (x->locked_until_us && now_us >= x->locked_until_us) {
		/* Lockout over: start afresh. */
		x->locked_until_us = 0;
		x->fails = 0;
	}
	if (!x->locked_until_us && x->fails &&
	    now_us - x->last_us >= (uint64_t)t->cfg.window_s * 1000000u)
		x->fails = 0;
	return i;
}

static bool locked(struct auth_brute *t, uint32_t ip, const char *login,
		   uint64_t now_us)
{
	uint32_t i = lookup(t, ip, login, now_us);

	return i != NIL && t->e[i].locked_until_us > now_us;
}

bool auth_brute_locked(struct auth_brute *t, uint32_t ip, const char *login,
		       uint64_t now_us)
{
	bool r = locked(t, ip, NULL, now_us) ||
		 (login && locked(t, 0, login, now_us));

	if (r)
		t->st.refused++;
	return r;
}

static uint32_t delay_for(const struct auth_brute_config *c, uint32_t fails,
			  uint32_t after)
{
	if (after == 0 || fails < after)
		return 0;
	uint64_t d = c->delay_ms;

	for (uint32_t k = after; k < fails && d < c->max_delay_ms; k++)
		d *= 2;
	return (uint32_t)(d < c->max_delay_ms ? d : c->max_delay_ms);
}

/* One failure on one key; returns its delay, sets *lock on a new
 * lockout. */
static uint32_t count(struct auth_brute *t, uint32_t ip, const char *login,
		      uint64_t now_us, uint32_t delay_after,
		      uint32_t lockout_after, bool *lock)
{
	uint32_t i = lookup(t, ip, login, now_us);

	if (i == NIL) {
		uint8_t k[KEYMAX];
		size_t n = mkkey(k, ip, login);

		i = insert(t, k, n);
	} else {
		lru_unlink(t, i);
		lru_front(t, i);
	}
	struct entry *x = &t->e[i];

	if (x->fails < UINT32_MAX)
		x->fails++;
	x->last_us = now_us;
	if (lockout_after && x->fails >= lockout_after && !x->locked_until_us) {
		x->locked_until_us =
			now_us + (uint64_t)t->cfg.lockout_s * 1000000u;
		*lock = true;
		t->st.lockouts++;
	}
	return delay_for(&t->cfg, x->fails, delay_after);
}

uint32_t auth_brute_fail(struct auth_brute *t, uint32_t ip, const char *login,
			 uint64_t now_us, bool *locked_now)
{
	bool lock = false;
	uint32_t d = count(t, ip, NULL, now_us, t->cfg.ip_delay_after,
			   t->cfg.ip_lockout_after, &lock);

	if (login && login[0]) {
		uint32_t du =
			count(t, 0, login, now_us, t->cfg.user_delay_after,
			      t->cfg.user_lockout_after, &lock);

		if (du > d)
			d = du;
	}
	t->st.failures++;
	if (locked_now)
		*locked_now = lock;
	return d;
}

void auth_brute_success(struct auth_brute *t, const char *login)
{
	uint8_t k[KEYMAX];
	size_t n = mkkey(k, 0, login);
	uint32_t i = find(t, k, n);

	if (i != NIL && !t->e[i].locked_until_us)
		remove_entry(t, i);
}

uint32_t auth_brute_count(const struct auth_brute *t)
{
	return t->n;
}

const struct auth_brute_stats *auth_brute_stats(const struct auth_brute *t)
{
	return &t->st;
}
