#!/bin/sh
# The storage seam (DESIGN.md "Storage and the index"): outside storage/ and
# tests/, no C source names the SQL backend (sqlite3, SQLITE_, libpq, PGconn,
# storage/conn.h, internal.h, sql.h), holds SQL text in a string literal (adjacent literals
# joined as C joins them; lower-case SQL too), or opens its own transaction
# (storage_begin/commit/rollback/end, storage_stmt, storage_fail).
# Above storage/, code calls units of work named for what they do.
#
# Usage: scripts/check_storage_seam.sh [ROOT]   (ROOT: the repository, by default
# the one this script is in). Prints file:line: reason: text for each finding
# and exits 1 when there is one. `make lint` runs it; tests/lint/ tests it.
set -eu
root=${1:-$(dirname "$0")/..}
cd "$root"
find . \( -path ./storage -o -path ./tests -o -path ./build -o -path ./node_modules -o -path ./.git \) \
    -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print |
    LC_ALL=C sort |
    perl -e '
use strict;
use warnings;
my $bad = 0;
my $backend = qr/\bsqlite3|\bSQLITE_|\blibpq\b|\bPGconn\b|\bPGresult\b|storage\/(?:conn|internal|sql)\.h/;
# SQL keywords in upper case, as SQL is written; and in any case the forms
# that only SQL takes (a verb with its object), so that lower-case SQL, which
# SQLite runs as well, is caught without flagging English words in messages.
my $sql = qr/\b(?:SELECT|INSERT\s+INTO|UPDATE\b.*\bSET|DELETE\s+FROM|BEGIN|COMMIT|ROLLBACK|PRAGMA|CREATE\s+TABLE|MATCH)\b/;
my $sql_any_case = qr/\b(?:insert\s+(?:or\s+\w+\s+)?into|delete\s+from|update\s+\w+\s+set
    |select\s+.+?\s+from\s+\w+|create\s+(?:temp\w*\s+|virtual\s+|unique\s+)?(?:table|index|view|trigger)
    |pragma\s+\w+|begin\s+(?:immediate|deferred|exclusive|transaction))\b/xi;
my $calls = qr/\b(?:storage_begin|storage_commit|storage_rollback|storage_end|storage_stmt|storage_fail)\s*\(/;
my %reported;
sub report {
    my ($file, $n, $why, $text) = @_;
    return if $reported{"$file:$n"}++;
    $text =~ s/^\s+|\s+$//g;
    print "$file:$n: $why: $text\n";
    $bad = 1;
}
# C joins adjacent string literals (only blanks, newlines and comments
# between them) into one: SQL split over lines is checked whole, and
# reported at the line where it begins.
my ($joined, $joined_line, $joined_text);
sub flush_literal {
    my ($file) = @_;
    return unless defined $joined;
    report($file, $joined_line, "SQL text above storage/", $joined_text)
        if $joined =~ $sql || $joined =~ $sql_any_case;
    undef $joined;
}
while (my $file = <STDIN>) {
    chomp $file;
    $file =~ s{^\./}{};
    open(my $fh, "<", $file) or die "$file: $!\n";
    my $in_comment = 0;
    while (my $line = <$fh>) {
        my ($code, @literals) = ("");
        my $rest = $line;
        while (length $rest) {
            if ($in_comment) {
                if ($rest =~ s{^.*?\*/}{}s) { $in_comment = 0; next; }
                last;
            }
            if ($rest =~ s{^"((?:[^"\\\n]|\\.)*)"}{}) {
                push @literals, $1;
                if (defined $joined) { $joined .= $1; }
                else { ($joined, $joined_line, $joined_text) = ($1, $., $line); }
                $code .= q{""};
                next;
            }
            if ($rest =~ s{^//.*}{}s) { last; }
            if ($rest =~ s{^/\*}{}) { $in_comment = 1; next; }
            if ($rest =~ s{^\s+}{}) { $code .= " "; next; }
            flush_literal($file);
            if ($rest =~ s{^(\x27(?:[^\x27\\\n]|\\.)*\x27)}{}) { $code .= q{0}; next; }
            # a quote that opens no literal (an apostrophe in #if 0 text)
            # is taken as code, one character, so the scan always moves on
            $rest =~ s{^([^"\x27/\s]+|/|.)}{}s and $code .= $1;
        }
        if (join(" ", $code, @literals) =~ $backend) { report($file, $., "SQL backend named above storage/", $line); next; }
        if ($code =~ $calls) { report($file, $., "raw transaction or statement above storage/ (call a unit of work)", $line); }
    }
    flush_literal($file);
    close $fh;
}
exit $bad;
'
