/*
 * ip6_opts.c - see ip6_opts.h. Main lcore, start-up only.
 */
#include "dataplane/ip6_opts.h"

#include "control/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ip6_parse_prefix(const char *s, struct net_addr *a, uint8_t *len)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	long l = 128;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash != NULL) {
		char *end;

		*slash = '\0';
		l = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || l < 1 || l > 128)
			return -EINVAL;
	}
	if (inet_pton(AF_INET6, buf, a->b) != 1)
		return -EINVAL;
	*len = (uint8_t)l;
	return 0;
}

static int parse_addr(const char *opt, const char *s, struct net_addr *a)
{
	if (inet_pton(AF_INET6, s, a->b) == 1)
		return 0;
	fprintf(stderr, "mxgate: %s: '%s' is not an IPv6 address\n", opt, s);
	return -1;
}

/* "[ADDR]:PORT" */
static int parse_endpoint(const char *opt, const char *s, struct net_addr *a,
			  uint16_t *port)
{
	char buf[INET6_ADDRSTRLEN + 2];
	const char *close = strchr(s, ']');
	char *end;
	long p;

	if (s[0] != '[' || close == NULL || close[1] != ':' ||
	    (size_t)(close - s - 1) >= sizeof(buf))
		goto bad;
	memcpy(buf, s + 1, (size_t)(close - s - 1));
	buf[close - s - 1] = '\0';
	p = strtol(close + 2, &end, 10);
	if (close[2] == '\0' || *end != '\0' || p < 1 || p > 65535 ||
	    inet_pton(AF_INET6, buf, a->b) != 1)
		goto bad;
	*port = (uint16_t)p;
	return 0;
bad:
	fprintf(stderr, "mxgate: %s: expected [IPv6-ADDR]:PORT, not '%s'\n",
		opt, s);
	return -1;
}

int ip6_opts_take(int argc, char **argv, struct ip6_opts *o)
{
	int out = 1;

	memset(o, 0, sizeof(*o));
	o->dad = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		int rc = 0;

		if (strcmp(a, "--") == 0) { /* EAL arguments follow */
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (strcmp(a, "--ip6-accept-ra") == 0) {
			o->accept_ra = true;
			continue;
		}
		if (strcmp(a, "--ip6") != 0 && strcmp(a, "--gateway6") != 0 &&
		    strcmp(a, "--ip6-dad") != 0 &&
		    strcmp(a, "--connect6") != 0 &&
		    strcmp(a, "--loadgen-ip6") != 0)
			takes = false;
		if (!takes) {
			argv[out++] = argv[i];
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "mxgate: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (strcmp(a, "--ip6") == 0) {
			rc = ip6_parse_prefix(v, &o->ip6, &o->prefixlen);
			if (rc < 0)
				fprintf(stderr,
					"mxgate: --ip6: '%s' is not "
					"IPv6-ADDR/LEN (LEN 1..128)\n",
					v);
			o->set = true;
		} else if (strcmp(a, "--gateway6") == 0) {
			rc = parse_addr(a, v, &o->gateway6);
			o->has_gateway = true;
		} else if (strcmp(a, "--ip6-dad") == 0) {
			char *end;
			long n = strtol(v, &end, 10);

			if (*v == '\0' || *end != '\0' || n < 0 || n > 10) {
				fprintf(stderr,
					"mxgate: --ip6-dad: '%s' is not "
					"0..10\n",
					v);
				rc = -1;
			}
			o->dad = (int)n;
		} else if (strcmp(a, "--connect6") == 0) {
			rc = parse_endpoint(a, v, &o->connect6,
					    &o->connect_port);
			o->has_connect = true;
		} else {
			rc = parse_addr(a, v, &o->loadgen6);
			o->has_loadgen = true;
		}
		if (rc < 0)
			return -1;
	}
	argv[out] = NULL;
	return out;
}

void ip6_config_apply(const struct ctl_config *m, struct net_stack_conf *stack)
{
	static const uint8_t zero[16];
	char buf[INET6_ADDRSTRLEN];

	if (stack->ip6_prefixlen == 0 && m->stack.prefix6_len != 0) {
		memcpy(stack->ip6.b, m->stack.address6, 16);
		stack->ip6_prefixlen = m->stack.prefix6_len;
		inet_ntop(AF_INET6, stack->ip6.b, buf, sizeof(buf));
		printf("mxgate: IPv6 %s/%u (config)\n", buf,
		       stack->ip6_prefixlen);
	}
	if (memcmp(stack->ip6_gateway.b, zero, 16) == 0)
		memcpy(stack->ip6_gateway.b, m->stack.gateway6, 16);
}

void ip6_opts_apply(const struct ip6_opts *o, struct net_stack_conf *stack,
		    struct svc_conf *svc)
{
	char buf[INET6_ADDRSTRLEN];

	/* RFC 4862 5.1: DupAddrDetectTransmits defaults to 1. */
	stack->dad_transmits = (uint8_t)(o->dad < 0 ? 1 : o->dad);
	if (o->set) {
		stack->ip6 = o->ip6;
		stack->ip6_prefixlen = o->prefixlen;
		inet_ntop(AF_INET6, o->ip6.b, buf, sizeof(buf));
		printf("mxgate: IPv6 %s/%u\n", buf, o->prefixlen);
	}
	stack->ip6_accept_ra = o->accept_ra;
	if (o->has_gateway)
		stack->ip6_gateway = o->gateway6;
	if (o->has_connect) {
		svc->connect_v6 = true;
		svc->connect_ip6 = o->connect6;
		svc->connect_port = o->connect_port;
	}
	if (o->has_loadgen) {
		svc->lg_v6 = true;
		svc->lg_ip6 = o->loadgen6;
	}
}
