/* ratelimit.c - see ratelimit.h */
#include "dataplane/policy/ratelimit.h"
