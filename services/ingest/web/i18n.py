"""The pages' words in Swedish (the default) and English."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from services.validator.messages import MESSAGES

LANGUAGES: Final = ("sv", "en")

_TEXT: Final[dict[str, tuple[str, str]]] = {
    # frame
    "app": ("Patient/Elevimporter", "Patient/student imports"),
    "skip": ("Hoppa till innehållet", "Skip to content"),
    "nav_imports": ("Importer", "Imports"),
    "nav_new": ("Ny elevimport/Ny patientimport", "New student/patient import"),
    "nav_exclusions": ("Undantag från arkivering", "Archive exclusions"),
    "language": ("Språk", "Language"),
    "switch_language": ("In English", "På svenska"),
    "signed_in_as": ("Inloggad som", "Signed in as"),
    "sign_out": ("Logga ut", "Sign out"),
    # steps
    "steps": ("Steg i importen", "Steps of the import"),
    "step1": ("Importinformation", "Import information"),
    "step2": ("Ladda upp fil", "Upload file"),
    "step3": ("Kontrollera filen", "Check the file"),
    "step4": ("Importera filen", "Import the file"),
    "step1_help": (
        "Välj skolan eller mottagningen, läsåret och filens format. Med arkivering arkiveras "
        "de aktiva patienter i enheten som inte finns i filen; ingen journal tas bort.",
        "Choose the school or clinic, the school year and the file's format. With archiving, "
        "the unit's active patients who are not in the file are archived; no journal is deleted.",
    ),
    "step2_help": (
        "Filen sparas men läses inte in i journalen ännu. Du ser resultatet av kontrollen "
        "innan något importeras.",
        "The file is stored but nothing is read into the journal yet. You see the check's "
        "result before anything is imported.",
    ),
    "step3_help": (
        "Hela filen kontrolleras. Giltiga rader importeras; tomma och ogiltiga rader hoppas "
        "över. Rätta filen och ladda upp den igen om något är fel.",
        "The whole file is checked. Valid rows are imported; empty and invalid rows are "
        "skipped. Correct the file and upload it again if something is wrong.",
    ),
    "step4_help": (
        "De giltiga raderna importeras i en enda transaktion: allt eller inget. Du kan avbryta "
        "tills importen är klar, och du får ett e-postmeddelande när den är klar.",
        "The valid rows are applied in one transaction: all or nothing. You can cancel until "
        "the import ends, and you get an email when it ends.",
    ),
    # step 1
    "unit": ("Skola eller mottagning", "School or clinic"),
    "school_year": ("Läsår", "School year"),
    "format": ("Filformat", "File format"),
    "archive_missing": (
        "Arkivera patienter som inte återfinns i importfilen",
        "Archive patients who are not in the import file",
    ),
    "treat_upper": ("Hantera som gymnasieskola", "Treat as upper secondary school"),
    "treat_upper_help": (
        "Årskurs 1–4 i filen är gymnasieår.",
        "Grades 1–4 in the file are upper-secondary years.",
    ),
    "to_upload": ("Ladda upp fil", "Upload file"),
    "no_units": ("Du administrerar inga enheter.", "You administer no units."),
    # step 2
    "file": ("Fil", "File"),
    "drop_here": (
        "Välj en fil eller släpp den här.",
        "Choose a file or drop it here.",
    ),
    "limit": ("Högst {mb} MB.", "At most {mb} MB."),
    "upload_progress": ("Uppladdning", "Upload"),
    "to_check": ("Kontrollera filen", "Check the file"),
    "back": ("Föregående", "Previous"),
    "too_large": ("Filen är större än {mb} MB.", "The file is larger than {mb} MB."),
    "wrong_type": (
        "Filen har fel typ för formatet (väntade {types}).",
        "The file's type does not fit the format (expected {types}).",
    ),
    "choose_file": ("Välj en fil först.", "Choose a file first."),
    "upload_failed": ("Uppladdningen misslyckades.", "The upload failed."),
    "file_empty": ("Filen är tom.", "The file is empty."),
    "pipeline_unavailable": (
        "Importen kunde inte startas just nu. Försök igen om en stund.",
        "The import could not be started just now. Try again in a while.",
    ),
    "option_not_allowed": (
        "Hantera som gymnasieskola finns bara för enheter utan angiven skolform.",
        "Treat as upper secondary is offered only for units without a school level.",
    ),
    "yes": ("Ja", "Yes"),
    "no": ("Nej", "No"),
    # job page
    "import_of": ("Import", "Import"),
    "state": ("Status", "State"),
    "progress": ("Förlopp", "Progress"),
    "rows_done": ("{done} av {total} rader", "{done} of {total} rows"),
    "rows_read": ("{done} rader lästa", "{done} rows read"),
    "working": ("Arbetar …", "Working …"),
    "detected": ("Vad som upptäcktes", "What was detected"),
    "encoding": ("Teckenkodning", "Encoding"),
    "delimiter": ("Avgränsare", "Delimiter"),
    "columns": ("Kolumner", "Columns"),
    "column": ("Kolumn", "Column"),
    "header_in_file": ("Rubrik i filen", "Header in the file"),
    "counts": ("Rader", "Rows"),
    "rows_total": ("rader totalt", "rows in all"),
    "rows_valid": ("giltiga", "valid"),
    "rows_invalid": ("ogiltiga", "invalid"),
    "rows_empty": ("tomma", "empty"),
    "rows_warnings": ("varningar", "warnings"),
    "tab_valid": ("Giltiga rader", "Valid rows"),
    "tab_invalid": ("Tomma/ogiltiga rader", "Empty/invalid rows"),
    "line": ("Rad", "Line"),
    "value": ("Värde", "Value"),
    "reason": ("Orsak", "Reason"),
    "severity": ("Typ", "Kind"),
    "error": ("Fel", "Error"),
    "warning": ("Varning", "Warning"),
    "filter_reason": ("Filtrera på orsak", "Filter by reason"),
    "all_reasons": ("Alla orsaker", "All reasons"),
    "filter": ("Filtrera", "Filter"),
    "identity_number": ("Personnummer", "Identity number"),
    "given_name": ("Förnamn", "Given name"),
    "family_name": ("Efternamn", "Family name"),
    "grade": ("Årskurs", "Grade"),
    "class": ("Klass", "Class"),
    "email": ("E-post", "Email"),
    "plan": ("Planen", "The plan"),
    "plan_create": ("skapas", "created"),
    "plan_update": ("uppdateras", "updated"),
    "plan_unchanged": ("oförändrade", "unchanged"),
    "plan_reactivate": ("återaktiveras", "re-activated"),
    "plan_archive": ("arkiveras", "archived"),
    "plan_guardians_create": ("nya vårdnadshavare", "new guardians"),
    "plan_guardians_update": ("vårdnadshavare uppdateras", "guardians updated"),
    "plan_guardians_unchanged": ("vårdnadshavare oförändrade", "guardians unchanged"),
    "archive_list": ("Arkiveras", "Would be archived"),
    "see_archive_list": ("Se vilka som skulle arkiveras", "See who would be archived"),
    "archive_held_note": (
        "Arkiveringen är så stor att den väntar på ditt godkännande efter importen.",
        "The archiving is so large that it waits for your approval after the import.",
    ),
    "page_of": ("{first}–{last} av {total}", "{first}–{last} of {total}"),
    "previous_page": ("Föregående sida", "Previous page"),
    "next_page": ("Nästa sida", "Next page"),
    "none": ("Inga rader.", "No rows."),
    "pages": ("Sidor", "Pages"),
    "import_file": ("Importera filen", "Import the file"),
    "confirm_import": (
        "Importera {valid} giltiga rader till {unit}? Ogiltiga rader hoppas över.",
        "Import {valid} valid rows into {unit}? Invalid rows are skipped.",
    ),
    "confirm_archive": (
        "{archive} patienter som inte finns i filen arkiveras.",
        "{archive} patients who are not in the file are archived.",
    ),
    "cancel": ("Avbryt", "Cancel"),
    "cancel_import": ("Avbryt importen", "Cancel the import"),
    "confirm_cancel": (
        "Avbryta importen? Inget av den ändras i journalen.",
        "Cancel the import? Nothing of it is changed in the journal.",
    ),
    "keep_going": ("Fortsätt importen", "Keep going"),
    "close": ("Stäng", "Close"),
    "held": ("Arkiveringen väntar på beslut", "The archiving waits for a decision"),
    "held_text": (
        "Importen är klar. {count} patienter skulle arkiveras, fler än gränsen för "
        "organisationen. Godkänn eller avböj arkiveringen.",
        "The import is done. {count} patients would be archived, more than the "
        "organisation's limit. Approve or decline the archiving.",
    ),
    "approve": ("Godkänn arkivering", "Approve archiving"),
    "decline": ("Avböj arkivering", "Decline archiving"),
    "confirm_approve": ("Arkivera {count} patienter?", "Archive {count} patients?"),
    "confirm_decline": (
        "Avsluta importen utan att arkivera någon?",
        "Finish the import without archiving anybody?",
    ),
    "outcome": ("Resultat", "Outcome"),
    "imported_patients": ("Importerade patienter", "Imported patients"),
    "created": ("skapade", "created"),
    "updated": ("uppdaterade", "updated"),
    "unchanged": ("oförändrade", "unchanged"),
    "reactivated": ("återaktiverade", "re-activated"),
    "archived": ("arkiverade", "archived"),
    "guardians_created": ("nya vårdnadshavare", "new guardians"),
    "guardians_updated": ("uppdaterade vårdnadshavare", "updated guardians"),
    "guardians_unchanged": ("oförändrade vårdnadshavare", "unchanged guardians"),
    "email_status": ("E-post", "Email"),
    "email_sent": ("E-post skickad till dig.", "Email sent to you."),
    "email_pending": ("E-post skickas …", "Email on its way …"),
    "email_failed": ("E-posten kunde inte skickas.", "The email could not be sent."),
    "undo": ("Ångra arkivering", "Undo archiving"),
    "confirm_undo": (
        "Återaktivera de {count} patienter som den här importen arkiverade?",
        "Re-activate the {count} patients this import archived?",
    ),
    "undone": (
        "Arkiveringen ångrades: {count} patienter återaktiverades.",
        "The archiving was undone: {count} patients were re-activated.",
    ),
    "done": ("Klar", "Done"),
    "superseded": (
        "En nyare fil laddades upp för samma enhet och läsår; den här importen genomfördes inte.",
        "A newer file was uploaded for the same unit and school year; this import was not applied.",
    ),
    "newer_import": ("Till den nyare importen", "To the newer import"),
    "cancel_pending": ("Avbryts …", "Cancelling …"),
    "file_rejected": ("Filen kunde inte läsas", "The file could not be read"),
    # states
    "state_received": ("Mottagen", "Received"),
    "state_validating": ("Kontrolleras", "Being checked"),
    "state_awaiting_confirmation": ("Väntar på bekräftelse", "Awaiting confirmation"),
    "state_importing": ("Importeras", "Importing"),
    "state_archiving": ("Arkiverar", "Archiving"),
    "state_completed": ("Klar", "Completed"),
    "state_cancelled": ("Avbruten", "Cancelled"),
    "state_failed": ("Misslyckades", "Failed"),
    "state_rejected": ("Avvisad", "Rejected"),
    # overview
    "organisation": ("Organisation", "Organisation"),
    "all_units": ("Alla enheter", "All units"),
    "all_states": ("Alla", "All"),
    "from": ("Från och med", "From"),
    "until": ("Till och med", "Until"),
    "who": ("Vem", "Who"),
    "when": ("När", "When"),
    "options": ("Val", "Options"),
    "duration": ("Tid", "Duration"),
    "opt_archive": ("arkivering", "archiving"),
    "opt_upper": ("gymnasium", "upper secondary"),
    "no_imports": ("Inga importer.", "No imports."),
    "show": ("Visa", "Show"),
    # exclusions
    "exclusions_help": (
        "Patienter i listan arkiveras aldrig av en import med arkivering i den här enheten.",
        "Patients on the list are never archived by an archiving import in this unit.",
    ),
    "add": ("Lägg till", "Add"),
    "remove": ("Ta bort", "Remove"),
    "identity_hint": ("ÅÅÅÅMMDD-NNNN", "YYYYMMDD-NNNN"),
    "added_by": ("Tillagd av", "Added by"),
    "added": ("Tillagd", "Added"),
    "no_exclusions": ("Inga undantag.", "No exclusions."),
    "identity_malformed": (
        "Skriv personnumret med tolv siffror: ÅÅÅÅMMDD-NNNN.",
        "Write the identity number with twelve digits: YYYYMMDD-NNNN.",
    ),
    "patient_not_found": (
        "Det finns ingen sådan patient i organisationen.",
        "No such patient in the organisation.",
    ),
    "confirm_remove": (
        "Ta bort undantaget? Patienten kan då arkiveras av en import.",
        "Remove the exclusion? The patient may then be archived by an import.",
    ),
    # errors and sign-in
    "error_title": ("Något gick fel", "Something went wrong"),
    "page_not_found": ("Sidan finns inte.", "There is no such page."),
    "not_found": ("Det finns ingen sådan import.", "There is no such import."),
    "signed_out": (
        "Du är inte inloggad. Öppna importen från journalsystemet igen.",
        "You are not signed in. Open the import from the journal system again.",
    ),
    "sign_in_refused": (
        "Inloggningen godtogs inte (ogiltig eller utgången länk). Öppna importen från "
        "journalsystemet igen.",
        "The sign-in was not accepted (an invalid or expired link). Open the import from the "
        "journal system again.",
    ),
    "csrf": (
        "Formuläret var för gammalt. Ladda om sidan och försök igen.",
        "The form was too old. Reload the page and try again.",
    ),
    "invalid_request": (
        "Sidans adress eller formulär var inte giltigt.",
        "The page's address or form was not valid.",
    ),
    "signing_in": ("Loggar in …", "Signing in …"),
    "continue": ("Fortsätt", "Continue"),
    "to_overview": ("Till importerna", "To the imports"),
    "mapping_title": ("Koppla filens kolumner", "Map the file's columns"),
    "mapping_help": (
        "Kolumnerna nedan kände importen inte igen. Välj vad varje kolumn innehåller; förslagen "
        "är förvalda. Kopplingen sparas för enheten och filformatet, och filen kontrolleras "
        "igen utan att laddas upp på nytt. Nästa fil med samma rubrikrad läses på samma sätt.",
        "The import did not recognise the columns below. Choose what each column holds; the "
        "suggestions are preselected. The mapping is saved for the unit and the file format, "
        "and the file is checked again without uploading it. The next file with the same "
        "header row is read the same way.",
    ),
    "mapping_org": (
        "Organisation (org) i filen som är enheten",
        "The org in the file that is the unit",
    ),
    "mapping_submit": ("Spara kopplingen och kontrollera igen", "Save the mapping and check again"),
    "mapping_repeated": (
        "kolumn {number}, namnet finns flera gånger",
        "column {number}, the name appears more than once",
    ),
    "column_not_read": ("Läs inte kolumnen", "Do not read the column"),
    "column_identity": ("Personnummer", "Identity number"),
    "column_given_name": ("Förnamn", "Given name"),
    "column_family_name": ("Efternamn", "Family name"),
    "column_grade": ("Årskurs", "Grade"),
    "column_class": ("Klass", "Class"),
    "column_email": ("E-post", "Email"),
    "column_phone": ("Telefon", "Phone"),
    "column_street": ("Gatuadress", "Street"),
    "column_postcode": ("Postnummer", "Postcode"),
    "column_city": ("Postort", "City"),
    "report_gone": (
        "Kontrollrapporten sparas inte längre (lagringstiden har gått ut).",
        "The check report is no longer kept (the retention period has passed).",
    ),
}

_FIELDS: Final = {"sv": 0, "en": 1}


def text(language: str, key: str, **values: object) -> str:
    words = _TEXT[key][_FIELDS.get(language, 0)]
    return words.format(**values) if values else words


def translator(language: str) -> Callable[..., str]:
    def t(key: str, **values: object) -> str:
        return text(language, key, **values)

    return t


def reason(language: str, code: str) -> str:
    """A row code's message, up to the dash (what is wrong, not yet what to do)."""
    entry = MESSAGES.get(code)
    if entry is None:
        return code
    words = entry.sv if language == "sv" else entry.en
    return words.split(" — ")[0]


def reasons(language: str) -> list[tuple[str, str]]:
    return [(code, reason(language, code)) for code in MESSAGES]
