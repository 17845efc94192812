/* fuzz_request.c — the server's request parser (src/server/request.c): the first byte picks the
 * route and the batch-size limit, the rest is the body. An accepted request must have 1..limit
 * inputs, each a valid UTF-8 text (a pair for /qa); a refused one a 4xx status and a message. */
#include "fuzz_util.h"
#include "server/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    srv_route route = (srv_route)(data[0] % SRV_N_ROUTES);
    srv_parse_limits lim = {1 + (data[0] >> 3)};
    srv_request r;
    srv_error err;
    if (srv_parse_request(route, (const char *)data + 1, size - 1, &lim, &r, &err) == 0) {
        FUZZ_CHECK(r.n >= 1 && r.n <= lim.max_client_batch_size && r.in);
        FUZZ_CHECK(!r.single || r.n == 1);
        for (int i = 0; i < r.n; i++) {
            FUZZ_CHECK(r.in[i].text && srv_utf8_valid(r.in[i].text, strlen(r.in[i].text)));
            if (r.in[i].text_pair) FUZZ_CHECK(srv_utf8_valid(r.in[i].text_pair, strlen(r.in[i].text_pair)));
            if (route == SRV_QA) FUZZ_CHECK(r.in[i].text_pair != NULL);
        }
        srv_request_free(&r);
    } else {
        FUZZ_CHECK(err.status >= 400 && err.status < 500 && err.type && err.message[0]);
    }
    return 0;
}
