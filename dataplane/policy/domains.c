/* domains.c - see domains.h */
#include "dataplane/policy/domains.h"
