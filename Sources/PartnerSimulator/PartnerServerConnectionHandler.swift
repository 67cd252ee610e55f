import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The first handler of every connection's pipeline, doing nothing itself: closing through its context skips
/// every other handler (TLS included), so the socket closes at once, without `close_notify`.
final class PartnerSocketEdgeHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny
}

/// Serves one connection: records each request and answers it as scripted.
final class PartnerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The body chunk size of `.large`.
    static let largeChunkSize = 16 * 1024
    /// How many `.large` chunks are written before yielding to the event loop.
    static let largeChunksPerTurn = 16

    private struct LargeBody {
        let path: String
        let total: Int
        var sent: Int
        let requestNumber: Int
    }

    private let shared: PartnerServerShared
    private let connectionNumber: Int

    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var arrivedAt = ContinuousClock.now
    private var keepAlive = true
    private var nextRequestNumber = 0
    private var currentRequestNumber = 0
    /// Requests counted in progress and not yet ended (normally at most one).
    private var openRequests: Set<Int> = []
    private var pendingDelay: Scheduled<Void>?
    private var largeBody: LargeBody?
    private var isPumping = false
    private var pendingPump: Scheduled<Void>?
    private var isPumpQueued = false
    /// From a request's end until its response's end is written (or forever, for a stall).
    private var isResponding = false
    private var queuedParts: [HTTPServerRequestPart] = []
    private var isActive = true

    init(shared: PartnerServerShared, connectionNumber: Int) {
        self.shared = shared
        self.connectionNumber = connectionNumber
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        // Reading goes on while a response is in progress (so a client's FIN or TLS close_notify is seen at
        // once, mid-stall or mid-body); pipelined requests wait their turn here.
        if isResponding || !queuedParts.isEmpty {
            queuedParts.append(part)
            return
        }
        handle(part, context)
    }

    private func handle(_ part: HTTPServerRequestPart, _ context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            self.head = head
            body = []
            arrivedAt = .now
            currentRequestNumber = nextRequestNumber
            nextRequestNumber += 1
            openRequests.insert(currentRequestNumber)
            shared.requestStarted()
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard let head else { return }
            self.head = nil
            keepAlive = head.isKeepAlive
            let requestNumber = currentRequestNumber
            let request = PartnerServer.RecordedRequest(
                method: head.method.rawValue,
                uri: head.uri,
                headers: head.headers.map { ($0.name, $0.value) },
                body: body,
                arrivedAt: arrivedAt,
                connectionNumber: connectionNumber
            )
            body = []
            shared.record(request)
            isResponding = true
            let isHead = head.method == .HEAD
            perform(shared.behavior(for: request.path), path: request.path, isHead: isHead, requestNumber, context)
        }
    }

    /// Handles the parts that arrived while the last response was in progress, up to the next request's end.
    private func drainQueuedParts(_ context: ChannelHandlerContext) {
        while isActive, !isResponding, !queuedParts.isEmpty {
            handle(queuedParts.removeFirst(), context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // A pump running now rechecks writability itself, and a scheduled one will run anyway.
        if context.channel.isWritable, largeBody != nil, !isPumping, !isPumpQueued, pendingPump == nil {
            // Not synchronously: this runs inside NIO's flush, which keeps writing what the pump adds for as
            // long as the socket takes it, and the connection's reads would wait until the body is out.
            isPumpQueued = true
            context.eventLoop.assumeIsolated().execute {
                self.isPumpQueued = false
                self.pumpLargeBody(context)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        pendingDelay?.cancel()
        pendingDelay = nil
        pendingPump?.cancel()
        pendingPump = nil
        largeBody = nil
        queuedParts.removeAll()
        for _ in openRequests {
            shared.requestEnded()
        }
        openRequests.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A peer that resets, fails the handshake or sends garbage: nothing to answer.
        context.close(promise: nil)
    }

    // MARK: Behaviors

    private func perform(
        _ behavior: PartnerServer.Behavior,
        path: String,
        isHead: Bool,
        _ requestNumber: Int,
        _ context: ChannelHandlerContext
    ) {
        guard isActive else { return }
        switch behavior {
        case .respond(let status, let headers, let body):
            respond(status: status, headers: headers, body: isHead ? [] : body, requestNumber, context)

        case .delayed(let delay, let next):
            pendingDelay = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) {
                self.pendingDelay = nil
                self.perform(next, path: path, isHead: isHead, requestNumber, context)
            }

        case .held(let gate, let next):
            let loop = context.eventLoop
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
            gate.whenOpen {
                loop.execute {
                    bound.value.handler.perform(next, path: path, isHead: isHead, requestNumber, bound.value.context)
                }
            }

        case .redirect(let status, let location):
            respond(status: status, headers: [("Location", location)], body: [], requestNumber, context)

        case .headersThenStall(let contentLength):
            let head = responseHead(status: 200, bodyLength: contentLength)
            context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)

        case .large(let byteCount, let declareLength):
            let head = responseHead(status: 200, bodyLength: declareLength ? max(0, byteCount) : nil)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if isHead {
                finishResponse(requestNumber, context)
                return
            }
            largeBody = LargeBody(path: path, total: max(0, byteCount), sent: 0, requestNumber: requestNumber)
            pumpLargeBody(context)

        case .reset:
            // SO_LINGER {on, 0} makes close(2) send an RST and drop any unsent data. The option's value is a
            // `struct linger`; `ChannelOptions.socketOption` carries a plain integer, which only happens to have
            // that layout on 64-bit little-endian glibc (an 8-byte Int 1 reads as {1, 0}). The socket channel's
            // `SocketOptionProvider` sets the real struct, synchronously when called on the event loop.
            guard let socket = context.channel as? any SocketOptionProvider else {
                closeSocket(context)
                return
            }
            socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
                self.closeSocket(context)
            }

        case .closeWithoutResponse:
            context.close(promise: nil)
        }
    }

    private func respond(
        status: Int,
        headers: [(String, String)],
        body: [UInt8],
        _ requestNumber: Int,
        _ context: ChannelHandlerContext
    ) {
        var fields = HTTPHeaders(headers)
        if !fields.contains(name: "content-length") && !fields.contains(name: "transfer-encoding") {
            fields.add(name: "Content-Length", value: String(body.count))
        }
        if !keepAlive && !fields.contains(name: "connection") {
            fields.add(name: "Connection", value: "close")
        }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: fields)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        }
        finishResponse(requestNumber, context)
    }

    /// A `200` head with `Content-Length: bodyLength`, or chunked when `nil`.
    private func responseHead(status: Int, bodyLength: Int?) -> HTTPResponseHead {
        var fields = HTTPHeaders([("Content-Type", "application/json")])
        if let bodyLength {
            fields.add(name: "Content-Length", value: String(bodyLength))
        } else {
            fields.add(name: "Transfer-Encoding", value: "chunked")
        }
        if !keepAlive {
            fields.add(name: "Connection", value: "close")
        }
        return HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: fields)
    }

    /// Writes the end of the response; the request stops counting as in progress once it is written.
    private func finishResponse(_ requestNumber: Int, _ context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
        let keepAlive = self.keepAlive
        promise.futureResult.assumeIsolated().whenComplete { _ in
            if self.openRequests.remove(requestNumber) != nil {
                self.shared.requestEnded()
            }
            if !keepAlive {
                context.close(promise: nil)
                return
            }
            self.isResponding = false
            self.drainQueuedParts(context)
        }
    }

    /// Writes `.large` chunks while the channel is writable, flushing each at once so that writability
    /// reflects it (TLS buffers unflushed plaintext); `channelWritabilityChanged` resumes it.
    ///
    /// The pump must leave room for the connection's reads, or a client's FIN or TLS close_notify goes unread
    /// until the whole body is out (seen with a client reading as fast as the server writes). So it writes at
    /// most `largeChunksPerTurn` chunks per turn and then reschedules itself 1 ms later (`execute` would not
    /// do: NIO runs tasks enqueued by tasks in the same tick, before polling I/O again), which caps the rate
    /// near 256 MB/s, plenty for tests; and writability changes resume it from a task, not from inside the
    /// flush that reported them.
    private func pumpLargeBody(_ context: ChannelHandlerContext) {
        // A write can fire writability changes synchronously; the loop below already rechecks writability.
        guard !isPumping else { return }
        isPumping = true
        defer { isPumping = false }

        var chunksThisTurn = 0
        while isActive, context.channel.isWritable, var large = largeBody, large.sent < large.total {
            guard chunksThisTurn < Self.largeChunksPerTurn else {
                if pendingPump == nil {
                    pendingPump = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(1)) {
                        self.pendingPump = nil
                        self.pumpLargeBody(context)
                    }
                }
                return
            }
            chunksThisTurn += 1
            let count = min(Self.largeChunkSize, large.total - large.sent)
            var buffer = context.channel.allocator.buffer(capacity: count)
            Self.writeFiller(into: &buffer, offset: large.sent, count: count, total: large.total)
            large.sent += count
            largeBody = large
            let promise = context.eventLoop.makePromise(of: Void.self)
            let shared = self.shared
            let path = large.path
            promise.futureResult.whenSuccess { shared.addBytesWritten(count, path: path) }
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: promise)
        }
        if isActive, let large = largeBody, large.sent >= large.total {
            largeBody = nil
            finishResponse(large.requestNumber, context)
        }
    }

    /// Bytes `offset..<offset+count` of a `total`-byte body `{"uid":"xxx…"}` (all `x` when too short).
    static func writeFiller(into buffer: inout ByteBuffer, offset: Int, count: Int, total: Int) {
        let prefix: [UInt8] = Array(#"{"uid":""#.utf8)
        let suffix: [UInt8] = Array(#""}"#.utf8)
        let filler = UInt8(ascii: "x")
        guard total >= prefix.count + suffix.count else {
            buffer.writeRepeatingByte(filler, count: count)
            return
        }
        let suffixStart = total - suffix.count
        var index = offset
        let end = offset + count
        while index < end {
            if index < prefix.count {
                buffer.writeInteger(prefix[index])
                index += 1
            } else if index >= suffixStart {
                buffer.writeInteger(suffix[index - suffixStart])
                index += 1
            } else {
                let run = min(end, suffixStart) - index
                buffer.writeRepeatingByte(filler, count: run)
                index += run
            }
        }
    }

    /// Closes the socket below every other handler (no TLS `close_notify`, nothing flushed first).
    private func closeSocket(_ context: ChannelHandlerContext) {
        if let edge = try? context.pipeline.syncOperations.context(handlerType: PartnerSocketEdgeHandler.self) {
            edge.close(promise: nil)
        } else {
            context.close(promise: nil)
        }
    }
}
