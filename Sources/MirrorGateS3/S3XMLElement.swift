#if canImport(FoundationXML)
import FoundationXML
#endif
import Foundation

/// An element of one of S3's small XML answers, with its text and child elements.
///
/// The answers are at most a few hundred kilobytes (1,000 keys of a listing), so a whole tree is
/// simpler than a streaming parser per answer type. Namespaces are ignored (S3 uses a default
/// `xmlns` only), and external entities are never resolved.
struct S3XMLElement: Sendable, Equatable {
    var name: String
    var text: String = ""
    var children: [S3XMLElement] = []

    /// The first child called `name`.
    func child(_ name: String) -> S3XMLElement? {
        children.first { $0.name == name }
    }

    /// Every child called `name`, in document order.
    func children(_ name: String) -> [S3XMLElement] {
        children.filter { $0.name == name }
    }

    /// The text of the first child called `name`.
    func value(_ name: String) -> String? {
        child(name)?.text
    }

    /// Parses a document and returns its root element.
    /// - Throws: ``S3Error/Code/invalidResponse`` when it is not well-formed XML.
    static func parse(_ data: Data, what: String) throws(S3Error) -> S3XMLElement {
        let builder = TreeBuilder()
        let parser = XMLParser(data: data)
        parser.shouldProcessNamespaces = false
        parser.shouldResolveExternalEntities = false
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            let reason = parser.parserError.map { "\($0)" } ?? "no root element"
            throw S3Error(.invalidResponse, "\(what): unreadable XML (\(reason))")
        }
        return root
    }

    /// Parses `data` and checks that its root is `expectedRoot` (or one of `alternativeRoots`). A
    /// root of `Error` (which S3 can send with 200 for CompleteMultipartUpload) is turned into the
    /// error it describes.
    static func parse(
        _ data: Data, expectedRoot: String, alternativeRoots: [String] = [], status: Int, requestID: String?
    ) throws(S3Error) -> S3XMLElement {
        let root = try parse(data, what: expectedRoot)
        if root.name == "Error" {
            throw S3Error.from(
                status: status == 200 ? 500 : status, s3Code: root.value("Code"), s3Message: root.value("Message"),
                requestID: requestID ?? root.value("RequestId"), operation: expectedRoot)
        }
        guard root.name == expectedRoot || alternativeRoots.contains(root.name) else {
            throw S3Error(.invalidResponse, "expected <\(expectedRoot)>, got <\(root.name)>", status: status, requestID: requestID)
        }
        return root
    }

    /// Collects the tree from parser callbacks; lives only for one synchronous `parse()`.
    private final class TreeBuilder: NSObject, XMLParserDelegate {
        var stack: [S3XMLElement] = []
        var root: S3XMLElement?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
            qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]
        ) {
            stack.append(S3XMLElement(name: elementName))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(
            _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?
        ) {
            guard let element = stack.popLast() else { return }
            if stack.isEmpty {
                root = element
            } else {
                stack[stack.count - 1].children.append(element)
            }
        }
    }
}
