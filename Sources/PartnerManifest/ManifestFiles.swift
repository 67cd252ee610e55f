#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds manifest files and reads them, safely: only regular files are read (never a FIFO or a
/// device that could block), and never more than the size limit allows.
enum ManifestFiles {
    struct ReadProblem: Error {
        var message: String
    }

    struct File {
        var path: String
        var contents: Result<[UInt8], ReadProblem>
    }

    /// The files that `paths` name: each folder's `*.yaml` and `*.yml` files sorted by name (not
    /// recursive, dot files skipped), and each other path as given. Each file is read.
    static func expand(_ paths: [String]) -> [File] {
        var files: [File] = []
        for path in paths {
            var info = stat()
            if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
                switch listManifests(in: path) {
                case .success(let names):
                    let folder = path.hasSuffix("/") ? path : path + "/"
                    for name in names {
                        files.append(File(path: folder + name, contents: readFile(folder + name)))
                    }
                case .failure(let problem):
                    files.append(File(path: path, contents: .failure(problem)))
                }
            } else {
                files.append(File(path: path, contents: readFile(path)))
            }
        }
        return files
    }

    private static func listManifests(in folder: String) -> Result<[String], ReadProblem> {
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

    /// Reads a regular file of at most ``ManifestText/maxBytes`` bytes (a bigger one is read
    /// only far enough to report its size).
    static func readFile(_ path: String) -> Result<[UInt8], ReadProblem> {
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
        if Int(info.st_size) > ManifestText.maxBytes {
            return .failure(
                ReadProblem(message: "manifest is \(info.st_size) bytes; the limit is \(ManifestText.maxBytes)")
            )
        }
        let limit = ManifestText.maxBytes + 1
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

    /// "cannot read PATH: " and why (by default, what the system said).
    private static func cannotRead<T>(
        _ path: String,
        _ why: String = String(cString: strerror(errno))
    ) -> Result<T, ReadProblem> {
        .failure(ReadProblem(message: "cannot read \(path): \(why)"))
    }
}
