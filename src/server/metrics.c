/*
 * GET /metrics: the Prometheus text exposition format (version 0.0.4).
 * Counters end in _total; gauges are the state at the time of the scrape.
 * The engine-side numbers come from the scheduler's stats (one lock), the
 * HTTP-side ones from the event loop's own counters.
 */
#include "server/server.h"

static void metric(json_buf *b, const char *name, const char *type, const char *help, double v) {
    json_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

void metrics_write(server *srv, json_buf *b) {
    sched_stats st;
    sched_get_stats(srv->sched, &st);
    const server_counters *n = &srv->n;
    metric(b, "zt_http_requests_total", "counter", "HTTP requests received.",
           (double)n->http_requests);
    json_buf_puts(b, "# HELP zt_http_responses_total HTTP responses by status class.\n"
                     "# TYPE zt_http_responses_total counter\n");
    for (int k = 1; k <= 5; k++)
        json_buf_printf(b, "zt_http_responses_total{code=\"%dxx\"} %llu\n", k,
                        (unsigned long long)n->by_status[k]);
    metric(b, "zt_http_connections", "gauge", "Open HTTP connections.",
           http_server_n_conns(srv->http));
    metric(b, "zt_requests_total", "counter", "Completion requests accepted.", (double)n->completions);
    metric(b, "zt_requests_finished_total", "counter", "Completion requests answered to the end.",
           (double)n->completions_ok);
    metric(b, "zt_requests_cancelled_total", "counter",
           "Completion requests dropped because the client left.", (double)st.requests_cancelled);
    metric(b, "zt_requests_failed_total", "counter", "Completion requests that failed in the engine.",
           (double)st.requests_failed);
    metric(b, "zt_requests_rejected_total", "counter",
           "Completion requests refused with 503 (every slot busy, the queue full).",
           (double)st.requests_rejected);
    metric(b, "zt_prompt_tokens_total", "counter", "Prompt tokens prefilled.", (double)st.prompt_tokens);
    metric(b, "zt_generated_tokens_total", "counter", "Tokens generated.", (double)st.gen_tokens);
    metric(b, "zt_tokens_per_second", "gauge",
           "Tokens generated per second, all requests, over the last 10 seconds.", st.gen_tok_per_s);
    json_buf_puts(b, "# HELP zt_time_to_first_token_seconds Request arrival to first token.\n"
                     "# TYPE zt_time_to_first_token_seconds summary\n");
    json_buf_printf(b, "zt_time_to_first_token_seconds_sum %.6f\nzt_time_to_first_token_seconds_count %llu\n",
                    st.ttft_sum_s, (unsigned long long)st.ttft_count);
    metric(b, "zt_queue_depth", "gauge", "Requests waiting for a sequence slot.", st.n_queued);
    metric(b, "zt_queue_capacity", "gauge", "Requests that may wait before 503.", st.max_queue);
    metric(b, "zt_slots_active", "gauge", "Sequence slots generating or prefilling.", st.n_active);
    metric(b, "zt_slots_total", "gauge", "Sequence slots (--parallel).", st.n_slots);
    metric(b, "zt_kv_pages_used", "gauge", "KV cache pages in use.", st.kv_used);
    metric(b, "zt_kv_pages_total", "gauge", "KV cache pages in the pool.", st.kv_total);
    metric(b, "zt_engine_steps_total", "counter", "Batched forward steps.", (double)st.steps);
    metric(b, "zt_engine_rows_total", "counter", "Rows (tokens) run through the forward pass.",
           (double)st.forward_rows);
    metric(b, "zt_engine_busy_seconds_total", "counter", "Time spent in the forward pass.",
           st.forward_s);
}
