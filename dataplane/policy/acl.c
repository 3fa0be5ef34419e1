/* acl.c - see acl.h */
#include "dataplane/policy/acl.h"
