/*
 * syncookie.c - keyed hashes for RFC 6528 initial sequence numbers, RFC
 * 7323 timestamp offsets and SYN cookies (RFC 4987 3.6).
 *
 * Ownership: pure functions of conf->secret (identical on every core, so
 * a cookie minted on one core validates on another) and the clock.
 *
 * Cookie layout (32 bits, our ISN in the SYN-ACK):
 *   bits 31..27  time slot (now / 64 s, mod 32)
 *   bits 26..24  index into syncookie_mss[]
 *   bits 23..0   SipHash-2-4(secret[16..31]; 4-tuple, peer ISN, slot, idx)
 * A cookie is valid for the current and the previous slot (64..128 s).
 * Lost by design: window scaling and timestamps are not offered in a
 * cookie SYN-ACK (we cannot remember them), so such connections run with
 * a 64 KiB window and no timestamps; SACK is never used by this stack.
 */
#include <string.h>

#include "net_priv.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = ROTL(v1, 13);                                             \
		v1 ^= v0;                                                      \
		v0 = ROTL(v0, 32);                                             \
		v2 += v3;                                                      \
		v3 = ROTL(v3, 16);                                             \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = ROTL(v3, 21);                                             \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = ROTL(v1, 17);                                             \
		v1 ^= v2;                                                      \
		v2 = ROTL(v2, 32);                                             \
	} while (0)

/* SipHash-2-4 (Aumasson, Bernstein 2012), little-endian word loads. */
uint64_t net_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, in + i, 8);
		m = rte_le_to_cpu_64(m);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; j < left; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport,
 * secretkey), M a 4 microsecond timer. */
uint32_t tcp_isn(struct net_stack *st, const struct tcp_key *k)
{
	uint32_t f =
		(uint32_t)net_siphash(st->sip_k0, st->sip_k1, k, sizeof(*k));

	return f + (uint32_t)(st->now_us / 4);
}

/* RFC 7323 7.1: a per-connection random offset for TSval. */
uint32_t tcp_ts_offset(struct net_stack *st, const struct tcp_key *k)
{
	return (uint32_t)(net_siphash(st->sip_k0, st->sip_k1, k, sizeof(*k)) >>
			  32);
}

static const uint16_t syncookie_mss[8] = {
	216, 536, 1200, 1360, 1400, 1440, 1452, 1460,
};

#define COOKIE_SLOT_US (64ULL * 1000000ULL)

static uint32_t cookie_hash(struct net_stack *st, const struct tcp_key *k,
			    uint32_t peer_isn, uint32_t slot, uint32_t idx)
{
	struct {
		struct tcp_key k;
		uint32_t isn, slot, idx;
	} in;

	memset(&in, 0, sizeof(in));
	in.k = *k;
	in.isn = peer_isn;
	in.slot = slot;
	in.idx = idx;
	return (uint32_t)net_siphash(st->ck_k0, st->ck_k1, &in, sizeof(in)) &
	       0xffffff;
}

uint32_t syncookie_make(struct net_stack *st, const struct tcp_key *k,
			uint32_t peer_isn, uint16_t *mss)
{
	uint32_t slot = (uint32_t)(st->now_us / COOKIE_SLOT_US);
	uint32_t idx = 0;

	for (uint32_t i = 0; i < 8; i++)
		if (syncookie_mss[i] <= *mss)
			idx = i;
	*mss = syncookie_mss[idx];
	return ((slot & 0x1f) << 27) | (idx << 24) |
	       cookie_hash(st, k, peer_isn, slot, idx);
}

uint16_t syncookie_check(struct net_stack *st, const struct tcp_key *k,
			 uint32_t peer_isn, uint32_t cookie)
{
	uint32_t now_slot = (uint32_t)(st->now_us / COOKIE_SLOT_US);
	uint32_t idx = (cookie >> 24) & 7;

	for (uint32_t age = 0; age < 2 && age <= now_slot; age++) {
		uint32_t slot = now_slot - age;

		if ((slot & 0x1f) != cookie >> 27)
			continue;
		if (cookie_hash(st, k, peer_isn, slot, idx) ==
		    (cookie & 0xffffff))
			return syncookie_mss[idx];
	}
	return 0;
}
