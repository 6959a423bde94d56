"""WebSub (W3C Recommendation, 2018): a hub pushes a feed's new document instead of us polling it.

    a poll's document names rel="hub" and rel="self"  (RefreshOutcome.hubs, .topic)
    -> subscribe: the row is stored (requested), then POST hub.mode=subscribe to the hub with
       hub.callback = websub.callback + an unguessable token, hub.secret (random, per
       subscription) and hub.lease_seconds
    -> the hub verifies intent: GET callback?hub.mode=subscribe&hub.topic=…&hub.challenge=…;
       the challenge is echoed only for a pending or live subscription of that topic (-> verified)
    -> pushes: POST callback; X-Hub-Signature (sha1/sha256/sha384/sha512 HMAC of the raw body
       with the secret) checked, then refresh.ingest_pushed: parse, identity, store, match, outbox
    -> renewed at 80 % of the lease the hub granted, but never sooner than the feed's poll
       interval after the verification; unrenewed at its end -> expired
    -> a feed removed from the config, or set to `websub: false`, is unsubscribed

Two halves, each given only what it needs (the store's engine, the config in force through
`InForce`, and the hub client or the ingest function):

    subscriber.Subscriber   subscription management: after polls, on the scheduler's timer
                            (the rows it claims), the requests to hubs
    callback.Callback       what monitor.web.websub routes GET and POST
                            /websub/<token> to: verification of intent, the token's lookup,
                            a push checked and ingested
    shared                  what both read: the config in force, a feed's return to polling

The protocol itself (the form POSTed to a hub, its deadline and bounded answer, the signature
check) is monitor.feeds.websub: it needs neither the store nor the config.

A hub is asked no more often than the feed would be polled. A lease so short that 80 % of it is
less than the feed's interval (a hub granting 1 s) is not renewed before it ends: the feed is
polled at its usual interval as if it had no hub (pushes that come are taken as a bonus), and
it is subscribed again (same callback and secret) one interval after each verification.

Polling goes on: while a subscription is verified, a safety poll every max(interval, 1 h) catches
what a hub missed (1 h: a lost push costs at most an hour; a hub that drops everything is no worse
than polling hourly). A hub that fails, denies, never verifies or lets the lease lapse puts the
feed back on its normal interval at once, and is asked again later (1 h; 1 d after a denial).

A hub is a stranger's server: each request to it has a deadline, redirects are not followed, and
at most a few KiB of its answer are read. Nothing it does raises out of this package.
"""
