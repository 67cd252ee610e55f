import Synchronization

extension PartnerServer {
    /// How the server answers a request to a scripted path: the well-behaved answers and every way a
    /// partner can misbehave that the pull transport must survive.
    public indirect enum Behavior: Sendable {
        /// A complete response. `Content-Length` is added from `body` unless `headers` name
        /// `Content-Length` or `Transfer-Encoding` themselves (so a test can also make the server lie).
        case respond(status: Int, headers: [(String, String)] = [], body: [UInt8])
        /// Waits `Duration` (a task scheduled on the connection's event loop, no thread blocked), then
        /// behaves as the inner behavior. A connection closed meanwhile cancels the wait.
        case delayed(Duration, Behavior)
        /// Waits until `gate` opens (a request arriving after that goes straight on), then behaves as
        /// the inner behavior: for a test that must act while a call is surely in flight, which a
        /// delay can't promise on a busy machine. A connection closed meanwhile drops the answer.
        case held(ResponseGate, Behavior)
        /// An empty-bodied redirect to `location`.
        case redirect(status: Int = 302, location: String)
        /// Sends `200` and its headers (with `Content-Length: contentLength`, or chunked when `nil`), then
        /// never sends the body nor closes, until the client gives up or the server shuts down.
        case headersThenStall(contentLength: Int?)
        /// `200` with a `byteCount`-byte JSON-looking body (`{"uid":"xxxx…"}`) streamed in 16 KiB chunks,
        /// each written only while the channel is writable, so a client that stops reading stops the
        /// server. `Content-Length` when `declareLength`, chunked otherwise. See
        /// ``PartnerServer/bytesWritten(path:)``.
        case large(byteCount: Int, declareLength: Bool)
        /// Reads the request, then aborts the TCP connection with an RST (`SO_LINGER` 0, and no TLS
        /// `close_notify`): what a crashing partner or a load balancer dropping the flow looks like.
        case reset
        /// Reads the request, then closes the connection cleanly (TLS `close_notify`, TCP FIN) without
        /// answering.
        case closeWithoutResponse

        /// `status` with a JSON body and `Content-Type: application/json`.
        public static func json(_ string: String, status: Int = 200) -> Behavior {
            .respond(status: status, headers: [("Content-Type", "application/json")], body: Array(string.utf8))
        }

        /// `200 {"uid":"…"}`: what a healthy partner answers.
        public static func uid(_ uid: String) -> Behavior {
            json("{\"uid\":\"\(jsonEscaped(uid))\"}")
        }

        /// An empty-bodied response with `status`.
        public static func status(_ status: Int) -> Behavior {
            .respond(status: status, body: [])
        }

        private static func jsonEscaped(_ string: String) -> String {
            var escaped = ""
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case "\n": escaped += "\\n"
                case "\r": escaped += "\\r"
                case "\t": escaped += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: escaped.unicodeScalars.append(scalar)
                }
            }
            return escaped
        }
    }
}

/// Holds the answers of ``PartnerServer/Behavior/held(_:_:)`` until ``open()``.
public final class ResponseGate: Sendable {
    private struct State {
        var isOpen = false
        var waiting: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())

    /// A closed gate.
    public init() {}

    /// Lets every held answer go, and every later one straight through.
    public func open() {
        let waiting = state.withLock { state in
            state.isOpen = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for resume in waiting { resume() }
    }

    /// Runs `resume` once the gate is open: now, if it is.
    func whenOpen(_ resume: @escaping @Sendable () -> Void) {
        let isOpen = state.withLock { state in
            if !state.isOpen { state.waiting.append(resume) }
            return state.isOpen
        }
        if isOpen { resume() }
    }
}
