/*
 * ip6_opts.h - the IPv6 command-line options (issue 16), kept apart from
 * main.c's parser so they can move with it as one piece:
 *
 *   --ip6 ADDR/LEN         our IPv6 address (off by default)
 *   --gateway6 ADDR        IPv6 next hop for off-link destinations
 *   --ip6-dad N            DAD solicitations before the addresses are
 *                          used (1; 0 = no DAD)
 *   --ip6-accept-ra        learn the default router from RAs
 *   --connect6 [ADDR]:PORT the connect check over IPv6
 *   --loadgen-ip6 ADDR     the --loadgen target over IPv6 (port and mode
 *                          from --loadgen)
 *
 * Main lcore only, before EAL starts.
 */
#ifndef MXG_IP6_OPTS_H
#define MXG_IP6_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/net/net.h"
#include "dataplane/services.h"

struct ip6_opts {
	bool set;
	struct net_addr ip6, gateway6, connect6, loadgen6;
	uint8_t prefixlen;
	int dad; /* -1: default */
	bool accept_ra, has_gateway, has_connect, has_loadgen;
	uint16_t connect_port;
};

/* Remove the options above (and their values) from argv, filling o.
 * Returns the new argc, or -1 after printing what was wrong. */
int ip6_opts_take(int argc, char **argv, struct ip6_opts *o);

/* Apply o to the stack template and the services (after main.c's own
 * parsing, which resets them). Prints the IPv6 address when set. */
void ip6_opts_apply(const struct ip6_opts *o, struct net_stack_conf *stack,
		    struct svc_conf *svc);

struct ctl_config;

/* The config file's stack.address6 / stack.gateway6, unless the command
 * line set them (after ip6_opts_apply). */
void ip6_config_apply(const struct ctl_config *m, struct net_stack_conf *stack);

/* Parse "ADDR/LEN" (LEN 1..128, default 128); 0 or -EINVAL. */
int ip6_parse_prefix(const char *s, struct net_addr *a, uint8_t *len);

#endif
