/*
 * config_read.h - internal to the configuration loader (control/config.c,
 * config_read.c, config_policy.c): the error collector every message
 * goes through, and the typed getters that read one key and report a
 * wrong type or an out-of-range value with file, line and key.
 *
 * Threads: main lcore only, like the loader. Not for use outside the
 * loader: callers use config.h.
 */
#ifndef MXG_CONTROL_CONFIG_READ_H
#define MXG_CONTROL_CONFIG_READ_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/config.h"

/* One load: where errors go, how many there were. */
struct ctx {
	const char *file;
	char *buf;
	size_t len, used;
	unsigned n_err, n_dropped;
	char hostname[256];
};

/* Records "FILE:LINE: key 'KEY': message" (all errors are collected
 * before a load fails as a whole). */
void cfg_err(struct ctx *x, unsigned line, const char *key,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The getters: each reads one key (name) of group g at path, reports
 * what is wrong through cfg_err() and then leaves *out unchanged. */
void cfg_check_keys(struct ctx *x, const config_setting_t *g,
		       const char *path, const char *const *allowed);
void cfg_free_addr_list(struct ctl_addr_list *a);
void cfg_get_addr_list(struct ctx *x, const config_setting_t *g,
			  const char *path, const char *name,
			  struct ctl_addr_list *out);
void cfg_get_bool(struct ctx *x, const config_setting_t *g, const char *path,
		     const char *name, bool *out);
void cfg_get_cidr_list(struct ctx *x, const config_setting_t *g,
			  const char *path, const char *name,
			  struct ctl_cidr_list *out);
void cfg_get_enum(struct ctx *x, const config_setting_t *g, const char *path,
		     const char *name, const char *const *names, int *out);
const config_setting_t *cfg_get_ipv4(struct ctx *x,
					const config_setting_t *g,
					const char *path, const char *name,
					bool allow_empty, uint32_t *out);
void cfg_get_secs(struct ctx *x, const config_setting_t *g, const char *path,
		     const char *name, uint32_t min, uint32_t max,
		     uint32_t *out_ms);
const config_setting_t *cfg_get_str(struct ctx *x, const config_setting_t *g,
				       const char *path, const char *name,
				       size_t maxlen, char **out);
void cfg_get_u32(struct ctx *x, const config_setting_t *g, const char *path,
		    const char *name, uint32_t min, uint32_t max, uint32_t *out);
void cfg_get_uint(struct ctx *x, const config_setting_t *g, const char *path,
		     const char *name, uint64_t min, uint64_t max,
		     uint64_t *out);
unsigned cfg_line_of(const config_setting_t *s);
void cfg_nomem(struct ctx *x, const config_setting_t *s, const char *key);
const char *cfg_norm_domain(const char *in, char *out, bool *wild);
bool cfg_parse_ipv4(const char *s, uint32_t *out);
void cfg_path_of(char *out, size_t len, const char *parent, const char *name);
const char *cfg_type_name(int t);
bool cfg_want_type(struct ctx *x, const config_setting_t *s, const char *key,
		      int type, const char *valid);

/* Content rules (config_content.c): a listener's keys, then the
 * rule sets (compiled) and the listeners' names resolved. */
void cfg_parse_listener_content(struct ctx *x, const config_setting_t *g,
				const char *path, struct ctl_listener *l);
void cfg_parse_content(struct ctx *x, const config_setting_t *root,
		       struct ctl_config *c);
void cfg_free_content(struct ctl_config *c);

/* The policy section (config_policy.c) and the listeners' inheritance
 * of policy.deny_action, resolved once both are read. */
void cfg_parse_policy(struct ctx *x, const config_setting_t *g,
			 struct ctl_config *c);
void cfg_inherit_policy(const config_setting_t *root, struct ctl_config *c);

/* TLS keys (config_tls.c): a listener's, a pool's, the tls section,
 * and freeing what they allocated (contexts included). */
void cfg_parse_listener_tls(struct ctx *x, const config_setting_t *g,
			    const char *path, struct ctl_listener *l);
void cfg_parse_pool_tls(struct ctx *x, const config_setting_t *g,
			const char *path, struct ctl_pool *p);
void cfg_parse_tls(struct ctx *x, const config_setting_t *g,
		   struct ctl_config *c);
void cfg_free_listener_tls(struct ctl_listener_tls *t);
void cfg_free_pool_tls(struct ctl_pool_tls *t);
/* AUTH (control/config_auth.c): a listener's auth keys, read after its
 * require_auth/allow_anonymous; the auth section (defaults when g is
 * NULL; loads the users file and the sender map); checks between
 * listeners and the section; freeing. */
void cfg_parse_listener_auth(struct ctx *x, const config_setting_t *g,
			     const char *path, struct ctl_listener *l);
void cfg_parse_auth(struct ctx *x, const config_setting_t *g,
		    struct ctl_config *c);
void cfg_check_auth(struct ctx *x, const config_setting_t *root,
		    struct ctl_config *c);
void cfg_free_auth(struct ctl_config *c);

#endif /* MXG_CONTROL_CONFIG_READ_H */
