#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds YAML files and reads them, safely: only regular files are read (never a FIFO or a device
/// that could block), and never more than the size limit allows.
package enum YAMLFiles {
    /// Why a file's bytes were not read.
    package enum ReadError: Error, Equatable {
        /// The system's reason (or ours: "it is a folder") for not reading `path`.
        case unreadable(path: String, reason: String)
        /// The file is more than `limit` bytes.
        case tooLarge(bytes: Int, limit: Int)
    }

    /// A path, and its bytes or why they weren't read.
    package struct File {
        package var path: String
        package var contents: Result<[UInt8], ReadError>

        package init(path: String, contents: Result<[UInt8], ReadError>) {
            self.path = path
            self.contents = contents
        }
    }

    /// The files that `paths` name: each folder's `*.yaml` and `*.yml` files sorted by name (not
    /// recursive, dot files skipped), and each other path as given. Each file is read, up to
    /// `maxBytes`.
    package static func expand(_ paths: [String], maxBytes: Int) -> [File] {
        var files: [File] = []
        for path in paths {
            var info = stat()
            if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
                switch listYAMLFiles(in: path) {
                case .success(let names):
                    let folder = path.hasSuffix("/") ? path : path + "/"
                    for name in names {
                        files.append(File(path: folder + name, contents: readFile(folder + name, maxBytes: maxBytes)))
                    }
                case .failure(let problem):
                    files.append(File(path: path, contents: .failure(problem)))
                }
            } else {
                files.append(File(path: path, contents: readFile(path, maxBytes: maxBytes)))
            }
        }
        return files
    }

    private static func listYAMLFiles(in folder: String) -> Result<[String], ReadError> {
        guard let directory = opendir(folder) else { return cannotRead(folder) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard !name.hasPrefix("."), name.hasSuffix(".yaml") || name.hasSuffix(".yml") else { continue }
            var info = stat()
            if stat(folder + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { continue }
            names.append(name)
        }
        return .success(names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }

    /// Reads a regular file of at most `maxBytes` bytes (a bigger one is read only far enough to
    /// report its size).
    package static func readFile(_ path: String, maxBytes: Int) -> Result<[UInt8], ReadError> {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return cannotRead(path) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return cannotRead(path) }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            break
        case S_IFDIR:
            return cannotRead(path, "it is a folder")
        default:
            return cannotRead(path, "not a regular file")
        }
        if Int(info.st_size) > maxBytes {
            return .failure(.tooLarge(bytes: Int(info.st_size), limit: maxBytes))
        }
        let limit = maxBytes + 1
        var bytes = [UInt8](repeating: 0, count: limit)
        var count = 0
        while count < limit {
            let result = bytes.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress! + count, limit - count)
            }
            if result < 0 {
                if errno == EINTR { continue }
                return cannotRead(path)
            }
            if result == 0 { break }
            count += result
        }
        bytes.removeSubrange(count...)
        return .success(bytes)
    }

    /// Why `path` can't be read (by default, what the system said).
    private static func cannotRead<T>(
        _ path: String,
        _ why: String = String(cString: strerror(errno))
    ) -> Result<T, ReadError> {
        .failure(.unreadable(path: path, reason: why))
    }
}
