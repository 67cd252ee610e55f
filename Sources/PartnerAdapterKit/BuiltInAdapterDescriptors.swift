// The descriptors of the adapters `PullSyncAdapters` ships. They live here, as data, so that the
// manifest validator (and the build plugin's tool, which must not build swift-crypto) knows their
// names and parameters; `PullSyncAdapters` implements them and its tests check that the two agree.

extension AdapterDescriptor {
    /// `signed-get`: `GET {url}?ec_id={ec_id}` signed with HMAC-SHA256 over the method, path,
    /// query and timestamp, the signature in one header.
    public static let signedGet = AdapterDescriptor(
        name: "signed-get",
        summary:
            "GET {url}?ec_id={ec_id}, signed with HMAC-SHA256 over method, path, query and timestamp in one header",
        parameters: [
            AdapterParameter(
                "key_id",
                .text,
                .required,
                summary: "Which key signed the request; sent as kid= in the signature header."
            ),
            AdapterParameter("secret", .secret, .required, summary: "The HMAC-SHA256 key, as a secret reference."),
            AdapterParameter(
                "signature_header",
                .headerName,
                .defaulted(.text("X-Signature")),
                summary: "The header carrying t=TIMESTAMP,kid=KEY_ID,sig=HEX."
            ),
            AdapterParameter(
                "uid_field",
                .fieldPath,
                .defaulted(.fieldPath(["uid"])),
                summary: "Dot path of object keys leading to the UID in a 200 answer."
            ),
        ]
    )

    /// `json-post`: `POST {url}` with a JSON body naming the EC, answered by JSON with a nested
    /// UID and a partner-given expiry that overrides the partner's TTL.
    public static let jsonPost = AdapterDescriptor(
        name: "json-post",
        summary: "POST {url} with a JSON body; reads a nested UID and a partner-given expiry that overrides the TTL",
        parameters: [
            AdapterParameter(
                "account_id",
                .text,
                .required,
                summary: "The publisher's account at the partner; sent as account_id in the body."
            ),
            AdapterParameter(
                "token",
                .secret,
                .optional,
                summary: "Sent as Authorization: Bearer <token> when given."
            ),
            AdapterParameter(
                "uid_field",
                .fieldPath,
                .defaulted(.fieldPath(["data", "uid"])),
                summary: "Dot path of object keys leading to the UID in a 200 answer."
            ),
            AdapterParameter(
                "expiry_field",
                .fieldPath,
                .defaulted(.fieldPath(["data", "expires_at"])),
                summary: "Dot path to the UID's expiry (a number); absent or null means the partner's TTL applies."
            ),
            AdapterParameter(
                "expiry_format",
                .choice(["unix_seconds", "seconds_from_now"]),
                .defaulted(.text("unix_seconds")),
                summary: "Whether the expiry is a Unix time or a number of seconds from now."
            ),
            AdapterParameter(
                "max_expiry",
                .duration(Duration.seconds(1)...Duration.seconds(365 * 86_400)),
                .defaulted(.duration(.seconds(30 * 86_400))),
                summary: "A partner-given expiry further away than this is cut to it."
            ),
            AdapterParameter(
                "send_consent",
                .boolean,
                .defaulted(.boolean(true)),
                summary: "Whether the request's consent strings (TCF, GPP, US privacy) go in the body."
            ),
        ]
    )

    /// The adapters `PullSyncAdapters` ships, sorted by name.
    public static let builtIn: [AdapterDescriptor] = [jsonPost, signedGet]
}
