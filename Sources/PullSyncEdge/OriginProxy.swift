import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import PullSyncHummingbird

/// Answers organic pages: proxied from the origin when one is configured, else a small
/// built-in page.
struct PageResponder: Sendable {
    let origin: String?
    let client: HTTPClient
    /// The header the request's consented EIDs go to the origin in, lowercased; `nil` for none.
    let eidsHeader: String?

    init(origin: String?, client: HTTPClient, eidsHeader: String?) {
        self.origin = origin
        self.client = client
        self.eidsHeader = eidsHeader?.lowercased()
    }

    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
        "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
    ]

    func respond(_ request: Request, context: EdgeRequestContext) async throws -> Response {
        guard let origin else { return builtInPage(request) }
        var outgoing = HTTPClientRequest(url: origin + (request.uri.path.isEmpty ? "/" : request.uri.description))
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        // Hop-by-hop headers, and any the client lists in Connection, stay with this hop.
        let listed = Set(
            request.headers[values: .connection].flatMap { $0.split(separator: ",") }.map {
                $0.trimmingCharacters(in: .whitespaces).lowercased()
            }
        )
        for field in request.headers
        where !Self.hopByHop.contains(field.name.canonicalName) && !listed.contains(field.name.canonicalName)
            && field.name.canonicalName != eidsHeader
        {
            outgoing.headers.add(name: field.name.rawName, value: field.value)
        }
        // Only ours reaches the origin: a browser's header of that name was dropped above.
        if let eidsHeader, let value = EIDsHeader.value(for: await context.pullSync.eids()) {
            outgoing.headers.add(name: eidsHeader, value: value)
        }
        if let peer = context.remoteAddress?.ipAddress {
            let forwarded = request.headers[.init("X-Forwarded-For")!].map { "\($0), \(peer)" } ?? peer
            outgoing.headers.replaceOrAdd(name: "X-Forwarded-For", value: forwarded)
        }
        if request.method != .get && request.method != .head {
            let body = try await request.body.collect(upTo: 1 << 20)
            outgoing.body = .bytes(body)
        }
        let upstream: HTTPClientResponse
        do {
            upstream = try await client.execute(outgoing, timeout: .seconds(10))
        } catch {
            return Response(status: .badGateway)
        }
        var headers = HTTPFields()
        for header in upstream.headers where !Self.hopByHop.contains(header.name.lowercased()) {
            if let name = HTTPField.Name(header.name) { headers.append(HTTPField(name: name, value: header.value)) }
        }
        let length = upstream.headers.first(name: "content-length").flatMap(Int.init)
        let body = upstream.body
        return Response(
            status: HTTPResponse.Status(code: Int(upstream.status.code)),
            headers: headers,
            body: ResponseBody(contentLength: length) { writer in
                for try await chunk in body { try await writer.write(chunk) }
                try await writer.finish(nil)
            }
        )
    }

    private func builtInPage(_ request: Request) -> Response {
        let html = """
            <!doctype html>
            <html><head><meta charset="utf-8"><title>pullsync edge</title></head>
            <body><h1>pullsync reference edge</h1><p>This page was served at once; partner IDs are learned after it went out.</p></body></html>

            """
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        let body = request.method == .head ? ByteBuffer() : ByteBuffer(string: html)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}
