/*
 * idem_dynamo.c - the idempotency store's DynamoDB backend (see goman/idem.h, idem_int.h),
 * for several operator machines sharing one table (partition key "id", a string).
 *
 * Every change is a conditional write, and expiry is checked in the condition itself (never
 * rely on TTL deletion: it lags by days, and the local endpoint never deletes):
 *  - begin: PutItem if `attribute_not_exists(id) OR expires_at <= :now OR (#s = :inprogress
 *    AND lease_expires <= :now AND payload_hash = :ph)`, ReturnValues=ALL_OLD (to see what
 *    an expired lease held: its ClientToken is then put back) and
 *    ReturnValuesOnConditionCheckFailure=ALL_OLD (the holder on conflict). When the reply
 *    does not carry the holder (the generic call path keeps no error body), a consistent
 *    GetItem reads it. A dead owner on this host, or a FAILED record, is replaced by a
 *    PutItem conditional on that record's owner nonce and status (compare-and-swap).
 *  - complete/fail: UpdateItem conditional on `#o = :me AND #s = :inprogress`.
 *  - a conditional write retried after a lost reply meets its own earlier write: begin and
 *    finish recognise their owner nonce in what they read back and count that as success.
 *  - cleanup: Scan for expires_at <= now, DeleteItem each with the same condition.
 * Numbers are N attributes; identity/result/error are JSON text in S attributes.
 * Ownership: struct dstore (the handle's be) owns table (malloc'd) and, when own_aws, aws;
 * dynamo_close frees them.
 * Errors: -1 + *err (the AWS error as the call path reported it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "goman/aws.h"
#include "goman/clock.h"
#include "goman/idem.h"
#include "goman/log.h"
#include "bytes_int.h"
#include "idem_int.h"
#include "internal.h"

#define COND_BEGIN                                           \
	"attribute_not_exists(id) OR expires_at <= :now OR " \
	"(#s = :inprogress AND lease_expires <= :now AND payload_hash = :ph)"

/* The DynamoDB backend's state (behind struct goman_idem's be). */
struct dstore {
	char *table;
	struct goman_aws *aws;
	bool own_aws;
};

static int dynamo_open(struct goman_idem *s, const struct goman_idem_opts *o, struct goman_err *err)
{
	struct dstore *d = calloc(1, sizeof(*d));
	if (!d || !(d->table = strdup(o->table))) {
		free(d);
		return gm_err_oom(err);
	}
	s->be = d;
	if (o->aws) {
		d->aws = o->aws;
		return 0;
	}
	d->aws = goman_aws_new(NULL, err);
	if (!d->aws)
		return -1;
	d->own_aws = true;
	return 0;
}

static void dynamo_close(struct goman_idem *s)
{
	struct dstore *d = s->be;
	if (!d)
		return;
	if (d->own_aws)
		goman_aws_free(d->aws);
	free(d->table);
	free(d);
	s->be = NULL;
}

/* ---- attribute values ---------------------------------------------------------------- */

static void add_s(cJSON *o, const char *name, const char *v)
{
	cJSON *a = cJSON_AddObjectToObject(o, name);
	if (a)
		cJSON_AddStringToObject(a, "S", v);
}

static void add_n(cJSON *o, const char *name, long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", v);
	cJSON *a = cJSON_AddObjectToObject(o, name);
	if (a)
		cJSON_AddStringToObject(a, "N", buf);
}

static void add_json(cJSON *o, const char *name, const cJSON *v)
{
	char *text = v ? cJSON_PrintUnformatted(v) : NULL;
	if (text)
		add_s(o, name, text);
	free(text);
}

static cJSON *rec_to_item(const struct gm_idem_rec *r)
{
	cJSON *it = cJSON_CreateObject();
	if (!it)
		return NULL;
	add_s(it, "id", r->id);
	add_s(it, "operation", r->operation);
	add_s(it, "status", r->status);
	add_s(it, "payload_hash", r->payload_hash);
	add_s(it, "client_token", r->client_token);
	add_s(it, "owner", r->owner);
	add_n(it, "owner_pid", r->owner_pid);
	add_n(it, "owner_pid_start", r->owner_pid_start);
	add_s(it, "owner_host", r->owner_host);
	add_n(it, "started_at", r->started_at);
	add_n(it, "lease_expires", r->lease_expires);
	add_n(it, "expires_at", r->expires_at);
	add_json(it, "identity", r->identity);
	add_json(it, "result", r->result);
	add_json(it, "error", r->error);
	return it;
}

/* {"id":{"S":"x"},"n":{"N":"1"}} → {"id":"x","n":"1"} → record (JSON text re-parsed) */
GOMAN_TESTABLE int gm_idem_item_to_rec(const cJSON *item, struct gm_idem_rec *r)
{
	cJSON *flat = cJSON_CreateObject();
	if (!flat)
		return -1;
	for (const cJSON *a = item ? item->child : NULL; a; a = a->next) {
		const cJSON *v = a->child; /* {"S": ...} or {"N": ...} */
		if (v && cJSON_IsString(v) && a->string)
			cJSON_AddStringToObject(flat, a->string, v->valuestring);
	}
	int rc = gm_idem_rec_from_json(flat, r);
	cJSON_Delete(flat);
	return rc;
}

static cJSON *base_req(const struct dstore *d)
{
	cJSON *req = cJSON_CreateObject();
	if (req)
		cJSON_AddStringToObject(req, "TableName", d->table);
	return req;
}

static int call(const struct dstore *d, const char *action, const cJSON *req,
		struct goman_aws_result *res)
{
	struct goman_aws_call c = {.service = "dynamodb", .action = action, .json = req};
	return goman_aws_call(d->aws, &c, res);
}

static bool cond_failed(const struct goman_aws_result *res)
{
	return !strcmp(res->err.code, "ConditionalCheckFailedException");
}

/* Reads the current item (consistent). 1 found, 0 absent, -1 error. */
static int get_item(const struct dstore *d, const char *id, struct gm_idem_rec *r,
		    struct goman_err *err)
{
	cJSON *req = base_req(d);
	cJSON *key = cJSON_AddObjectToObject(req, "Key");
	add_s(key, "id", id);
	cJSON_AddBoolToObject(req, "ConsistentRead", 1);
	struct goman_aws_result res;
	int rc = call(d, "GetItem", req, &res);
	cJSON_Delete(req);
	if (rc) {
		*err = res.err;
		goman_aws_result_clear(&res);
		return -1;
	}
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(res.data, "Item");
	int found = item && item->child ? 1 : 0;
	if (found && gm_idem_item_to_rec(item, r)) {
		gm_idem_rec_clear(r);
		found = goman_err_set(err, GOMAN_EPARSE, GOMAN_CLASS_NONE, "IdempotencyStore",
				      "idempotency table '%s': item %.12s is not a record",
				      d->table, id);
	}
	goman_aws_result_clear(&res);
	return found;
}

/* PutItem of rec: old NULL = the begin condition (COND_BEGIN), else replace exactly `old`.
 * Returns 1 written, 0 condition failed, -1 error. *replaced (when asked) gets the
 * overwritten item on success, or the holder on a failed condition when the reply
 * carried it; *have_replaced says whether it did. */
static int put(const struct dstore *d, const struct gm_idem_rec *rec, const struct gm_idem_rec *old,
	       int64_t now, struct gm_idem_rec *replaced, bool *have_replaced,
	       struct goman_err *err)
{
	cJSON *req = base_req(d);
	cJSON_AddItemToObject(req, "Item", rec_to_item(rec));
	cJSON *names = cJSON_AddObjectToObject(req, "ExpressionAttributeNames");
	cJSON *vals = cJSON_AddObjectToObject(req, "ExpressionAttributeValues");
	cJSON_AddStringToObject(names, "#s", "status");
	if (!old) {
		cJSON_AddStringToObject(req, "ConditionExpression", COND_BEGIN);
		add_n(vals, ":now", now);
		add_s(vals, ":inprogress", "INPROGRESS");
		add_s(vals, ":ph", rec->payload_hash);
		cJSON_AddStringToObject(req, "ReturnValues", "ALL_OLD");
	} else {
		cJSON_AddStringToObject(req, "ConditionExpression",
					"#o = :oldowner AND #s = :oldstatus");
		cJSON_AddStringToObject(names, "#o", "owner");
		add_s(vals, ":oldowner", old->owner);
		add_s(vals, ":oldstatus", old->status);
	}
	cJSON_AddStringToObject(req, "ReturnValuesOnConditionCheckFailure", "ALL_OLD");
	struct goman_aws_result res;
	int rc = call(d, "PutItem", req, &res);
	cJSON_Delete(req);
	int out;
	if (rc == 0) {
		out = 1;
		const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(res.data, "Attributes");
		if (replaced && attrs && attrs->child && gm_idem_item_to_rec(attrs, replaced) == 0)
			*have_replaced = true;
	} else if (cond_failed(&res)) {
		out = 0;
		/* ALL_OLD on a failed condition: the holder, when the call path keeps the error
		 * body's "Item" in res.data; otherwise the caller reads it with GetItem */
		const cJSON *item = cJSON_GetObjectItemCaseSensitive(res.data, "Item");
		if (replaced && item && item->child && gm_idem_item_to_rec(item, replaced) == 0)
			*have_replaced = true;
		else if (replaced)
			gm_idem_rec_clear(replaced);
	} else {
		*err = res.err;
		out = -1;
	}
	goman_aws_result_clear(&res);
	return out;
}

/* Puts back the ClientToken of the record an expired lease held (we overwrote it with ours). */
static int restore_token(const struct dstore *d, struct gm_idem_rec *mine, const char *token,
			 struct goman_err *err)
{
	cJSON *req = base_req(d);
	cJSON *key = cJSON_AddObjectToObject(req, "Key");
	add_s(key, "id", mine->id);
	cJSON_AddStringToObject(req, "UpdateExpression", "SET client_token = :t");
	cJSON_AddStringToObject(req, "ConditionExpression", "#o = :me");
	cJSON *names = cJSON_AddObjectToObject(req, "ExpressionAttributeNames");
	cJSON_AddStringToObject(names, "#o", "owner");
	cJSON *vals = cJSON_AddObjectToObject(req, "ExpressionAttributeValues");
	add_s(vals, ":t", token);
	add_s(vals, ":me", mine->owner);
	struct goman_aws_result res;
	int rc = call(d, "UpdateItem", req, &res);
	cJSON_Delete(req);
	if (rc) {
		if (cond_failed(&res))
			goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyLost",
				      "%s: another run took the record over while this one took it",
				      mine->operation);
		else
			*err = res.err;
		goman_aws_result_clear(&res);
		return -1;
	}
	goman_aws_result_clear(&res);
	snprintf(mine->client_token, sizeof(mine->client_token), "%s", token);
	return 0;
}

static int dynamo_begin(struct goman_idem *s, struct gm_idem_rec *mine, struct gm_idem_rec *found,
			enum gm_idem_verdict *verdict, struct goman_err *err)
{
	const struct dstore *d = s->be;
	int64_t now = mine->started_at;
	for (int tries = 0; tries < 8; tries++) {
		bool have_old = false;
		int w = put(d, mine, NULL, now, found, &have_old, err);
		if (w < 0)
			return -1;
		if (w == 1) {
			*verdict = GM_IDEM_CREATED;
			if (have_old) {
				*verdict = gm_idem_judge(found, mine->payload_hash, now);
				if (*verdict == GM_IDEM_REPLACE_TAKEOVER &&
				    restore_token(d, mine, found->client_token, err))
					return -1;
				if (*verdict != GM_IDEM_REPLACE_TAKEOVER)
					*verdict = GM_IDEM_REPLACE_FRESH;
			}
			return 0;
		}
		/* condition failed: someone holds a live record; read it (unless the reply carried
		 * it) and judge */
		int g = 1;
		if (!have_old) {
			gm_idem_rec_clear(found);
			g = get_item(d, mine->id, found, err);
		}
		if (g < 0)
			return -1;
		if (g == 0)
			continue; /* removed meanwhile: try again */
		if (!strcmp(found->owner, mine->owner)) {
			/* our own write: a retried PutItem whose first reply was lost */
			gm_idem_rec_clear(found);
			*verdict = GM_IDEM_CREATED;
			return 0;
		}
		*verdict = gm_idem_judge(found, mine->payload_hash, now);
		if (*verdict == GM_IDEM_ANSWER_COMPLETED ||
		    *verdict == GM_IDEM_ANSWER_IN_PROGRESS || *verdict == GM_IDEM_ANSWER_MISMATCH)
			return 0;
		/* a dead owner on this host, or FAILED: compare-and-swap on its owner nonce */
		char token[65];
		snprintf(token, sizeof(token), "%s", mine->client_token);
		if (*verdict == GM_IDEM_REPLACE_TAKEOVER)
			snprintf(mine->client_token, sizeof(mine->client_token), "%s",
				 found->client_token);
		w = put(d, mine, found, now, NULL, NULL, err);
		if (w < 0)
			return -1;
		if (w == 1)
			return 0;
		snprintf(mine->client_token, sizeof(mine->client_token), "%s", token);
		gm_idem_rec_clear(found); /* lost the swap: judge again */
	}
	return goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_TRANSIENT, "IdempotencyBusy",
			     "%s: the idempotency record kept changing; try again",
			     mine->operation);
}

static int dynamo_finish(struct goman_idem *s, const struct goman_idem_ticket *t,
			 const char *status, const cJSON *result, const cJSON *error,
			 struct goman_err *err)
{
	const struct dstore *d = s->be;
	cJSON *req = base_req(d);
	cJSON *key = cJSON_AddObjectToObject(req, "Key");
	add_s(key, "id", t->key);
	cJSON *names = cJSON_AddObjectToObject(req, "ExpressionAttributeNames");
	cJSON_AddStringToObject(names, "#s", "status");
	cJSON_AddStringToObject(names, "#o", "owner");
	cJSON *vals = cJSON_AddObjectToObject(req, "ExpressionAttributeValues");
	add_s(vals, ":st", status);
	add_n(vals, ":exp", goman_now_ms() + s->ttl_ms);
	add_s(vals, ":me", t->owner_id);
	add_s(vals, ":inprogress", "INPROGRESS");
	const char *field = result ? "result" : error ? "error" : NULL;
	if (field) {
		cJSON_AddStringToObject(names, "#v", field);
		add_json(vals, ":v", result ? result : error);
	}
	cJSON_AddStringToObject(req, "UpdateExpression",
				field ? "SET #s = :st, expires_at = :exp, #v = :v"
				      : "SET #s = :st, expires_at = :exp");
	cJSON_AddStringToObject(req, "ConditionExpression", "#o = :me AND #s = :inprogress");
	struct goman_aws_result res;
	int rc = call(d, "UpdateItem", req, &res);
	cJSON_Delete(req);
	if (rc && cond_failed(&res)) {
		/* a retried update whose first reply was lost finds its own work done */
		struct gm_idem_rec cur;
		struct goman_err ignored = GOMAN_ERR_INIT;
		memset(&cur, 0, sizeof(cur));
		if (get_item(d, t->key, &cur, &ignored) == 1 && !strcmp(cur.owner, t->owner_id) &&
		    !strcmp(cur.status, status))
			rc = 0;
		else
			goman_err_set(
				err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyLost",
				"%s: this process no longer holds the idempotency record (its "
				"lease expired and another run took it over, or it was removed)",
				t->operation);
		gm_idem_rec_clear(&cur);
	} else if (rc) {
		*err = res.err;
	}
	goman_aws_result_clear(&res);
	return rc ? -1 : 0;
}

/* Scans the whole table, page by page; filter (over :now, or NULL) and projection (or NULL)
 * narrow it. each(item, ctx) returns nonzero to stop. 0, or -1 with *err. */
static int scan(const struct dstore *d, const char *filter, const char *projection, int64_t now,
		int (*each)(const struct dstore *d, const cJSON *item, void *ctx), void *ctx,
		struct goman_err *err)
{
	cJSON *start = NULL;
	int rc = 0, stop = 0;
	do {
		cJSON *req = base_req(d);
		if (filter) {
			cJSON_AddStringToObject(req, "FilterExpression", filter);
			add_n(cJSON_AddObjectToObject(req, "ExpressionAttributeValues"), ":now",
			      now);
		}
		if (projection)
			cJSON_AddStringToObject(req, "ProjectionExpression", projection);
		/* an operator listing right after a run must see its writes */
		cJSON_AddBoolToObject(req, "ConsistentRead", 1);
		if (start)
			cJSON_AddItemToObject(req, "ExclusiveStartKey", start);
		start = NULL;
		struct goman_aws_result res;
		rc = call(d, "Scan", req, &res);
		cJSON_Delete(req);
		if (rc) {
			*err = res.err;
			goman_aws_result_clear(&res);
			break;
		}
		const cJSON *it;
		cJSON_ArrayForEach (it, cJSON_GetObjectItemCaseSensitive(res.data, "Items")) {
			if (!stop)
				stop = each(d, it, ctx);
		}
		const cJSON *lek = cJSON_GetObjectItemCaseSensitive(res.data, "LastEvaluatedKey");
		if (!stop && lek && lek->child)
			start = cJSON_Duplicate(lek, 1);
		goman_aws_result_clear(&res);
	} while (start);
	return rc ? -1 : 0;
}

struct sweep {
	int64_t now;
	size_t removed;
};

/* DeleteItem with the scan's condition again: a record renewed meanwhile stays. */
static int delete_expired(const struct dstore *d, const cJSON *item, void *ctx)
{
	struct sweep *w = ctx;
	const char *id = goman_json_path_str(item, "id.S");
	if (!id)
		return 0;
	cJSON *del = base_req(d);
	add_s(cJSON_AddObjectToObject(del, "Key"), "id", id);
	cJSON_AddStringToObject(del, "ConditionExpression", "expires_at <= :now");
	add_n(cJSON_AddObjectToObject(del, "ExpressionAttributeValues"), ":now", w->now);
	struct goman_aws_result dres;
	if (call(d, "DeleteItem", del, &dres) == 0)
		w->removed++;
	goman_aws_result_clear(&dres);
	cJSON_Delete(del);
	return 0;
}

static int dynamo_cleanup(struct goman_idem *s, size_t *removed, struct goman_err *err)
{
	const struct dstore *d = s->be;
	struct sweep w = {.now = goman_now_ms()};
	int rc = scan(d, "expires_at <= :now", "id", w.now, delete_expired, &w, err);
	*removed = w.removed;
	return rc;
}

int goman_idem_dynamo_create_table(struct goman_aws *aws, const char *table, struct goman_err *err)
{
	cJSON *req =
		cJSON_Parse("{\"AttributeDefinitions\":[{\"AttributeName\":\"id\","
			    "\"AttributeType\":\"S\"}],\"KeySchema\":[{\"AttributeName\":\"id\","
			    "\"KeyType\":\"HASH\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}");
	if (!req)
		return gm_err_oom(err);
	cJSON_AddStringToObject(req, "TableName", table);
	struct goman_aws_call c = {.service = "dynamodb", .action = "CreateTable", .json = req};
	struct goman_aws_result res;
	int rc = goman_aws_call(aws, &c, &res);
	cJSON_Delete(req);
	if (rc && !strcmp(res.err.code, "ResourceInUseException"))
		rc = 0; /* it exists already */
	else if (rc && err)
		*err = res.err;
	goman_aws_result_clear(&res);
	if (rc == 0)
		goman_log(GOMAN_LOG_INFO, "IDEMPOTENCY", "table '%s' ready", table);
	return rc ? -1 : 0;
}

struct lister {
	goman_idem_list_fn fn;
	void *ctx;
};

static int list_item(const struct dstore *d, const cJSON *item, void *ctx)
{
	(void)d;
	struct lister *l = ctx;
	struct gm_idem_rec r;
	int stop = 0;
	cJSON *o = gm_idem_item_to_rec(item, &r) ? NULL : gm_idem_rec_to_json(&r);
	if (o)
		stop = l->fn(o, l->ctx);
	cJSON_Delete(o);
	gm_idem_rec_clear(&r);
	return stop;
}

static int dynamo_list(struct goman_idem *s, bool all, goman_idem_list_fn fn, void *ctx,
		       struct goman_err *err)
{
	const struct dstore *d = s->be;
	struct lister l = {fn, ctx};
	return scan(d, all ? NULL : "expires_at > :now", NULL, goman_now_ms(), list_item, &l, err);
}

/* DeleteItem conditional on the owner and status it was judged by. */
static int dynamo_forget(struct goman_idem *s, const char *key, bool force, struct goman_err *err)
{
	const struct dstore *d = s->be;
	struct gm_idem_rec r;
	memset(&r, 0, sizeof(r));
	int64_t now = goman_now_ms();
	int found = get_item(d, key, &r, err);
	if (found <= 0 || r.expires_at <= now || gm_idem_forget_check(&r, force, now, err)) {
		int rc = found < 0 || (found && r.expires_at > now) ? -1 : 0;
		gm_idem_rec_clear(&r);
		return rc;
	}
	cJSON *req = base_req(d);
	add_s(cJSON_AddObjectToObject(req, "Key"), "id", key);
	cJSON_AddStringToObject(req, "ConditionExpression", "#o = :o AND #s = :s");
	cJSON *names = cJSON_AddObjectToObject(req, "ExpressionAttributeNames");
	cJSON_AddStringToObject(names, "#o", "owner");
	cJSON_AddStringToObject(names, "#s", "status");
	cJSON *vals = cJSON_AddObjectToObject(req, "ExpressionAttributeValues");
	add_s(vals, ":o", r.owner);
	add_s(vals, ":s", r.status);
	struct goman_aws_result res;
	int rc = call(d, "DeleteItem", req, &res) == 0 ? 1 : -1;
	if (rc < 0 && cond_failed(&res))
		goman_err_set(err, GOMAN_ECONFLICT, GOMAN_CLASS_CLIENT, "IdempotencyChanged",
			      "record %.12s changed while it was being forgotten; look again", key);
	else if (rc < 0)
		*err = res.err;
	goman_aws_result_clear(&res);
	cJSON_Delete(req);
	gm_idem_rec_clear(&r);
	return rc;
}

const struct gm_idem_ops gm_idem_dynamo_ops = GM_IDEM_OPS(dynamo, "dynamodb", NULL);
