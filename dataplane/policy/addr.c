/* addr.c - see addr.h */
#include "dataplane/policy/addr.h"
