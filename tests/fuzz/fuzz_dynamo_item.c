/*
 * fuzz_dynamo_item.c - DynamoDB items of the idempotency table (idem_dynamo.c): a GetItem
 * "Item", a Scan's "Items" or a conditional failure's "Item" in any shape becomes a record
 * or is refused; what becomes a record is judged (begin's verdict) and listed (JSON that
 * parses again) without a crash or an out-of-range number.
 * Input: a GetItem/Scan reply body.
 */
#include <stdio.h>
#include <cjson/cJSON.h>
#include "goman/clock.h"
#include "idem_int.h"
#include "fuzz.h"

static void one(const cJSON *item)
{
	struct gm_idem_rec r;
	if (gm_idem_item_to_rec(item, &r) == 0) {
		if (!r.id[0] || !r.status[0] || !r.payload_hash[0])
			abort(); /* a record has what begin needs to judge it */
		cJSON *o = gm_idem_rec_to_json(&r);
		char *text = o ? cJSON_PrintUnformatted(o) : NULL;
		if (text) {
			cJSON *back = cJSON_Parse(text);
			if (!back)
				abort();
			cJSON_Delete(back);
		}
		free(text);
		cJSON_Delete(o);
		int64_t now = 1767225600000LL;
		gm_idem_judge(&r,
			      "0000000000000000000000000000000000000000000000000000000000000000",
			      now);
		gm_idem_judge(&r, r.payload_hash, now);
		struct goman_err err;
		goman_err_clear(&err);
		gm_idem_forget_check(&r, false, now, &err);
	}
	gm_idem_rec_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *j = cJSON_ParseWithLength((const char *)data, size);
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "Items");
	const cJSON *it;
	if (cJSON_IsArray(items)) {
		cJSON_ArrayForEach (it, items)
			one(it);
	} else {
		const cJSON *item = cJSON_GetObjectItemCaseSensitive(j, "Item");
		one(item ? item : j);
	}
	cJSON_Delete(j);
	return 0;
}
