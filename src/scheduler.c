/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *		  The redis_sync scheduler background worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "redis_sync.h"

void
rs_register_scheduler(void)
{
}
