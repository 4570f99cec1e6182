"""HL7 v2 segments split into named fields for the message detail page (the names of
HL7 v2.5.1's fields of the segments practice systems send most; others are numbered)."""

from __future__ import annotations

from dataclasses import dataclass

NAMES: dict[str, tuple[str, ...]] = {
    "MSH": ("Field Separator", "Encoding Characters", "Sending Application", "Sending Facility",
            "Receiving Application", "Receiving Facility", "Date/Time of Message", "Security",
            "Message Type", "Message Control ID", "Processing ID", "Version ID",
            "Sequence Number", "Continuation Pointer", "Accept Acknowledgment Type",
            "Application Acknowledgment Type", "Country Code", "Character Set"),
    "EVN": ("Event Type Code", "Recorded Date/Time", "Date/Time Planned Event",
            "Event Reason Code", "Operator ID", "Event Occurred"),
    "PID": ("Set ID", "Patient ID", "Patient Identifier List", "Alternate Patient ID",
            "Patient Name", "Mother's Maiden Name", "Date/Time of Birth", "Administrative Sex",
            "Patient Alias", "Race", "Patient Address", "County Code", "Phone Number - Home",
            "Phone Number - Business", "Primary Language", "Marital Status", "Religion",
            "Patient Account Number", "SSN Number", "Driver's License Number",
            "Mother's Identifier", "Ethnic Group", "Birth Place", "Multiple Birth Indicator",
            "Birth Order", "Citizenship", "Veterans Military Status", "Nationality",
            "Patient Death Date and Time", "Patient Death Indicator"),
    "PV1": ("Set ID", "Patient Class", "Assigned Patient Location", "Admission Type",
            "Preadmit Number", "Prior Patient Location", "Attending Doctor", "Referring Doctor",
            "Consulting Doctor", "Hospital Service", "Temporary Location",
            "Preadmit Test Indicator", "Re-admission Indicator", "Admit Source",
            "Ambulatory Status", "VIP Indicator", "Admitting Doctor", "Patient Type",
            "Visit Number", "Financial Class", "Charge Price Indicator", "Courtesy Code",
            "Credit Rating", "Contract Code", "Contract Effective Date", "Contract Amount",
            "Contract Period", "Interest Code", "Transfer to Bad Debt Code",
            "Transfer to Bad Debt Date", "Bad Debt Agency Code", "Bad Debt Transfer Amount",
            "Bad Debt Recovery Amount", "Delete Account Indicator", "Delete Account Date",
            "Discharge Disposition", "Discharged to Location", "Diet Type", "Servicing Facility",
            "Bed Status", "Account Status", "Pending Location", "Prior Temporary Location",
            "Admit Date/Time", "Discharge Date/Time"),
    "NK1": ("Set ID", "Name", "Relationship", "Address", "Phone Number",
            "Business Phone Number", "Contact Role"),
    "ORC": ("Order Control", "Placer Order Number", "Filler Order Number", "Placer Group Number",
            "Order Status", "Response Flag", "Quantity/Timing", "Parent",
            "Date/Time of Transaction", "Entered By", "Verified By", "Ordering Provider"),
    "OBR": ("Set ID", "Placer Order Number", "Filler Order Number", "Universal Service ID",
            "Priority", "Requested Date/Time", "Observation Date/Time",
            "Observation End Date/Time", "Collection Volume", "Collector Identifier",
            "Specimen Action Code", "Danger Code", "Relevant Clinical Info",
            "Specimen Received Date/Time", "Specimen Source", "Ordering Provider"),
    "OBX": ("Set ID", "Value Type", "Observation Identifier", "Observation Sub-ID",
            "Observation Value", "Units", "References Range", "Abnormal Flags", "Probability",
            "Nature of Abnormal Test", "Observation Result Status",
            "Effective Date of Reference Range", "User Defined Access Checks",
            "Date/Time of the Observation", "Producer's ID", "Responsible Observer"),
    "MSA": ("Acknowledgment Code", "Message Control ID", "Text Message",
            "Expected Sequence Number", "Delayed Acknowledgment Type", "Error Condition"),
    "ERR": ("Error Code and Location", "Error Location", "HL7 Error Code", "Severity"),
    "SCH": ("Placer Appointment ID", "Filler Appointment ID", "Occurrence Number",
            "Placer Group Number", "Schedule ID", "Event Reason", "Appointment Reason",
            "Appointment Type", "Appointment Duration", "Appointment Duration Units",
            "Appointment Timing Quantity"),
    "AIL": ("Set ID", "Segment Action Code", "Location Resource ID", "Location Type",
            "Location Group", "Start Date/Time"),
    "AIP": ("Set ID", "Segment Action Code", "Personnel Resource ID", "Resource Type",
            "Resource Group", "Start Date/Time"),
    "GT1": ("Set ID", "Guarantor Number", "Guarantor Name", "Guarantor Spouse Name",
            "Guarantor Address", "Guarantor Ph Num - Home"),
    "IN1": ("Set ID", "Insurance Plan ID", "Insurance Company ID", "Insurance Company Name",
            "Insurance Company Address"),
    "AL1": ("Set ID", "Allergen Type Code", "Allergen Code/Mnemonic/Description",
            "Allergy Severity Code", "Allergy Reaction Code", "Identification Date"),
    "DG1": ("Set ID", "Diagnosis Coding Method", "Diagnosis Code", "Diagnosis Description",
            "Diagnosis Date/Time", "Diagnosis Type"),
}  # fmt: skip


@dataclass(frozen=True)
class Field:
    position: str  # PID-5
    name: str
    value: str


@dataclass(frozen=True)
class Segment:
    name: str
    fields: list[Field]
    text: str


def segments(text: str) -> list[Segment]:
    """Each segment of ``text`` (lines, or carriage returns) with its non-empty fields."""
    lines = [line for line in text.replace("\r", "\n").split("\n") if line.strip()]
    separator = text[3:4] if text.startswith("MSH") and len(text) > 3 else "|"
    found = []
    for line in lines:
        parts = line.split(separator)
        name = parts[0][:3]
        names = NAMES.get(name, ())
        values = parts[1:]
        if name == "MSH":  # MSH-1 is the separator itself
            values = [separator, *values]
        fields = [
            Field(f"{name}-{i}", names[i - 1] if i - 1 < len(names) else "", value)
            for i, value in enumerate(values, start=1)
            if value != ""
        ]
        found.append(Segment(name, fields, line))
    return found
