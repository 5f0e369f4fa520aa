#include "jsonc.h"
