/*
 * steer.h - which dataplane lcore owns a received frame (DESIGN 2).
 *
 * Rules, applied to every frame by whichever core received it:
 *  - TCP to a local port inside some core's active-open range: that core
 *    (return traffic of backend connections, owned by local port);
 *  - any other TCP: hash of the client (source) IPv4 address only, so every
 *    connection from one client lands on one core and per-core per-client
 *    tables are exact; over IPv6 a hash of the client's /64, so one
 *    client network (whose hosts rotate addresses inside it) stays on one
 *    core for per-prefix limits;
 *  - ICMP errors that quote one of our TCP segments: the owner of the
 *    quoted connection (same two rules on the inner header);
 *  - ARP replies (and requests, which carry the sender's binding), and
 *    IPv6 Neighbor Solicitations and Advertisements likewise: every core
 *    learns them (STEER_ALL); the receiving core answers;
 *  - ICMPv6 Packet Too Big quoting our TCP segment: like ICMP errors;
 *  - everything else (ICMP echo, junk to be counted and dropped): the
 *    receiving core (STEER_LOCAL).
 *
 * Pure functions of the frame and a read-only steer_conf: no state, no
 * allocation, safe on any lcore. Unit-tested in tests/unit/dataplane.
 */
#ifndef MXG_STEER_H
#define MXG_STEER_H

#include <stdint.h>

#include <rte_mbuf.h>

#define STEER_LOCAL 0xffff
#define STEER_ALL 0xfffe

struct steer_conf {
	uint16_t n_cores;
	uint32_t seed;            /* hash seed for client IPs */
	uint16_t eph_base;        /* first active-open port of core 0 */
	uint16_t eph_per_core;    /* ports per core; core k owns
				   * [eph_base + k*eph_per_core, +eph_per_core) */
};

/* Core index owning a client IPv4 address (network byte order). */
uint16_t steer_core_of_ip(const struct steer_conf *sc, uint32_t ip_be);

/* Core index owning a client IPv6 address (16 bytes, network order): a
 * hash of its /64 only. */
uint16_t steer_core_of_ip6(const struct steer_conf *sc, const uint8_t *ip6);

/* Core index owning local port (host order), or STEER_LOCAL if the port is
 * outside every active-open range. */
uint16_t steer_core_of_port(const struct steer_conf *sc, uint16_t port);

/* Owner of a received Ethernet frame: a core index, STEER_LOCAL or
 * STEER_ALL. Reads headers only; never modifies the mbuf. */
uint16_t steer_frame(const struct steer_conf *sc, const struct rte_mbuf *m);

/* Fill the active-open range of core k into lo/hi (inclusive). */
void steer_eph_range(const struct steer_conf *sc, uint16_t k, uint16_t *lo,
		     uint16_t *hi);

#endif /* MXG_STEER_H */
