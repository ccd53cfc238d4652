/// Everything the gateway keeps about its cache besides the bytes: the tag index, the object
/// index with its repository links, and the journal of the local budget ledger. SQLite
/// implements all three in one file; a shared store may implement them separately.
public typealias MetadataStore = TagIndex & ObjectIndex & BudgetJournal
